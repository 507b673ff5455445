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

// A prompt stays up at least this long: a decision arriving right behind it waits its turn,
// so the person at the door can read what is asked of them.
const PROMPT_MIN_MS = 2000;
let promptUntil = 0;

function handle(r) {
  const now = Date.now();
  if (r.kind !== "prompt" && now < promptUntil) {
    setTimeout(() => handle(r), promptUntil - now);
    return;
  }
  if (r.kind === "prompt") {
    promptUntil = now + PROMPT_MIN_MS;
    show("prompt", prompts[r.prompt] || String(r.prompt || "Follow the prompt"), "");
  } else show(r.kind, words[r.kind] || r.kind, r.name || "");
}

const source = new EventSource("/console/api/door/stream");
source.onmessage = (ev) => handle(JSON.parse(ev.data));
