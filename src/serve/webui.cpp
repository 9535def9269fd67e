// The chat page at "/": one self-contained file (no build step, no CDN,
// works offline). Multi-turn, streamed replies (fetch + SSE), a stop button,
// temperature and max-tokens settings, tokens/s of each reply.
#include "serve/server.h"

namespace solar::serve {

const char* const kChatPage = R"HTML(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>solar chat</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font-family: system-ui, sans-serif; margin: 0; display: flex; flex-direction: column; height: 100vh; background: #f6f6f4; }
  header { padding: 8px 16px; background: #223; color: #eee; display: flex; gap: 16px; align-items: center; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0 12px 0 0; }
  header label { font-size: 13px; }
  header input { width: 70px; }
  #key { width: 120px; }
  #messages { flex: 1; overflow-y: auto; padding: 16px; }
  .msg { max-width: 800px; margin: 8px auto; padding: 10px 14px; border-radius: 8px; white-space: pre-wrap; line-height: 1.4; }
  .user { background: #dde7ff; }
  .assistant { background: #fff; border: 1px solid #ddd; }
  .error { background: #fdd; }
  .meta { max-width: 800px; margin: 0 auto; font-size: 12px; color: #777; }
  form { display: flex; gap: 8px; padding: 12px 16px; background: #eee; }
  textarea { flex: 1; height: 48px; font: inherit; }
  button { padding: 0 18px; }
</style></head>
<body>
<header>
  <h1>solar chat</h1>
  <label>temperature <input id="temp" type="number" min="0" max="2" step="0.1" value="0.8"></label>
  <label>max tokens <input id="maxtok" type="number" min="1" step="1" value="256"></label>
  <label>API key <input id="key" type="password" placeholder="(none)"></label>
  <button id="reset" type="button">new chat</button>
  <span id="stats"></span>
</header>
<div id="messages"></div>
<form id="form">
  <textarea id="input" placeholder="Message (Enter sends, Shift+Enter for a new line)"></textarea>
  <button id="send" type="submit">Send</button>
  <button id="stop" type="button" disabled>Stop</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const history = [];
let controller = null;
$("key").value = localStorage.getItem("solar-key") || "";
$("key").onchange = () => localStorage.setItem("solar-key", $("key").value);

function add(role, text) {
  const d = document.createElement("div");
  d.className = "msg " + role;
  d.textContent = text;
  $("messages").appendChild(d);
  $("messages").scrollTop = $("messages").scrollHeight;
  return d;
}
function busy(b) { $("send").disabled = b; $("stop").disabled = !b; }

async function send(text) {
  history.push({role: "user", content: text});
  add("user", text);
  const out = add("assistant", "");
  const meta = document.createElement("div");
  meta.className = "meta";
  $("messages").appendChild(meta);
  controller = new AbortController();
  busy(true);
  const headers = {"Content-Type": "application/json"};
  if ($("key").value) headers["Authorization"] = "Bearer " + $("key").value;
  const body = {messages: history, stream: true, stream_options: {include_usage: true},
                temperature: parseFloat($("temp").value), max_tokens: parseInt($("maxtok").value, 10)};
  let reply = "", tokens = 0, deltas = 0, first = 0, finish = "";
  try {
    const res = await fetch("/v1/chat/completions", {method: "POST", headers, body: JSON.stringify(body), signal: controller.signal});
    if (!res.ok) {
      let msg = res.status + " " + res.statusText;
      try { msg = (await res.json()).error.message; } catch (e) {}
      throw new Error(msg);
    }
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done) break;
      buf += dec.decode(value, {stream: true});
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const line = buf.slice(0, i).trim();
        buf = buf.slice(i + 2);
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        if (chunk.usage) tokens = chunk.usage.completion_tokens;
        const c = chunk.choices && chunk.choices[0];
        if (!c) continue;
        if (c.delta && c.delta.content) {
          if (!first) first = performance.now();
          reply += c.delta.content;
          ++deltas;  // about a token each; the final usage chunk gives the exact count
          out.textContent = reply;
          $("messages").scrollTop = $("messages").scrollHeight;
        }
        if (c.finish_reason) finish = c.finish_reason;
      }
      if (first) {
        const s = (performance.now() - first) / 1000;
        $("stats").textContent = s > 0 ? (deltas / s).toFixed(1) + " tok/s" : "";
      }
    }
    const s = first ? (performance.now() - first) / 1000 : 0;
    tokens = tokens || deltas;
    const rate = s > 0 ? (tokens / s).toFixed(1) + " tok/s" : "";
    meta.textContent = tokens + " tokens" + (rate ? ", " + rate : "") + (finish ? ", " + finish : "");
    $("stats").textContent = rate;
  } catch (e) {
    if (e.name === "AbortError") meta.textContent = "stopped after " + deltas + " tokens";
    else { out.className = "msg error"; out.textContent = reply + (reply ? "\n" : "") + "Error: " + e.message; }
  } finally {
    history.push({role: "assistant", content: reply});
    controller = null;
    busy(false);
  }
}

$("form").onsubmit = (ev) => {
  ev.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  send(text);
};
$("input").onkeydown = (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("form").requestSubmit(); }
};
$("stop").onclick = () => { if (controller) controller.abort(); };
$("reset").onclick = () => { if (controller) controller.abort(); history.length = 0; $("messages").textContent = ""; $("stats").textContent = ""; };
</script>
</body></html>
)HTML";

}  // namespace solar::serve
