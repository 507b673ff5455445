// The login page: POST the password as JSON; on success go to the live view.
"use strict";
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const message = document.getElementById("message");
  message.textContent = "";
  const res = await fetch("/console/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ password: document.getElementById("password").value }),
    credentials: "same-origin",
  });
  const body = await res.json().catch(() => ({}));
  if (res.ok) {
    window.location.assign(body.next || "/console/live");
  } else {
    message.textContent = body.error || `refused (${res.status})`;
    message.className = "message error";
    document.getElementById("password").value = "";
  }
});
