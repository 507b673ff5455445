"""The MQTT transport: verdicts, availability, state, events, Home Assistant discovery, signed commands.

Sits at the edge of the appliance (docs/mqtt.md): `MqttSink` is one more `edge.sinks.Sink`,
`MqttLink` is the connection, `Outbox` is the on-disk queue that makes verdicts survive
broker outages and restarts.
"""
