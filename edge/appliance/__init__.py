"""The appliance: camera frames → tracked faces → verdicts about enrolled people.

`loop.Appliance` wires the stages (camera, engine, identifier, tracker, policy, sinks);
`tracker`, `policy` and `verdict` are plain logic; `identify` is the 1:N seam to the
vault; `notify` speaks systemd's notify protocol; `metrics` keeps the run statistics.
"""
