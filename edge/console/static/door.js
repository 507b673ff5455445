// The door display: full screen, no login. Shows the liveness prompt and the last decision;
// a name only when the device is configured to show names ([console] door_display_names).
"use strict";
const prompts = { left: "Turn your head to the left", right: "Turn your head to the right", up: "Look up" };
const words = { granted: "Welcome", denied: "Access denied", unknown: "Not recognised", spoof: "Access denied" };
const prompt = document.getElementById("door-prompt");
const detail = document.getElementById("door-detail");
let idleTimer = null;

function show(state, text, more) {
  document.body.className = `door ${state}`;
  prompt.textContent = text;
  detail.textContent = more || "";
  clearTimeout(idleTimer);
  idleTimer = setTimeout(() => show("idle", "Please look at the camera", ""), state === "prompt" ? 6000 : 4000);
}

const source = new EventSource("/console/api/door/stream");
source.onmessage = (ev) => {
  const r = JSON.parse(ev.data);
  if (r.kind === "prompt") show("prompt", prompts[r.prompt] || String(r.prompt || "Follow the prompt"), "");
  else show(r.kind, words[r.kind] || r.kind, r.name || "");
};
