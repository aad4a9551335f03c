// The sertk web page: upload a file or record from the microphone, then show the emotion,
// the probabilities and the timeline. Plain JS, no build step, no network beyond this server.
// Recording captures raw PCM with an AudioWorklet and encodes a 16-bit WAV here, because the
// server decodes with libsndfile, which reads WAV but not the WebM/Opus of MediaRecorder.
"use strict";

const COLOURS = {
  angry: "#d62728", happy: "#f0b400", sad: "#1f77b4", neutral: "#5f7d8c", calm: "#17becf",
  fearful: "#9467bd", disgust: "#2ca02c", surprised: "#ff7f0e", boredom: "#8c564b",
  excited: "#e377c2", frustrated: "#bcbd22", other: "#444444",
};
const SPARE = ["#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#31a354"];
const SILENCE = "silence";
const MAX_RECORD_S = 60;

const $ = (id) => document.getElementById(id);
let labels = [];
let preprocess = {}; // the bundle's: duration = seconds of input the model hears (null: all)

function colour(label) {
  if (label === SILENCE) return "var(--silence)";
  if (COLOURS[label]) return COLOURS[label];
  const index = Math.max(labels.indexOf(label), 0);
  return SPARE[index % SPARE.length];
}

const percent = (p) => `${(100 * p).toFixed(p >= 0.995 || p < 0.005 ? 0 : 1)}%`;
const seconds = (s) => `${s.toFixed(s < 10 ? 2 : 1)} s`;

function element(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "style") Object.assign(node.style, value);
    else if (key.startsWith("aria-") || key === "role") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

// --- talking to the server ---------------------------------------------------------------

// A server started with --api-key wants it on every /v1 request; the page asks once and keeps
// it for this tab only (sessionStorage), sent as the X-API-Key header.
const KEY = "sertk-api-key";
const withKey = () => {
  const key = sessionStorage.getItem(KEY);
  return key ? { "X-API-Key": key } : {};
};

function askForKey() {
  $("key-form").hidden = false;
  $("model-info").textContent = "Enter the server's API key to use it.";
  $("key-input").focus();
}

async function post(path, blob, name) {
  const form = new FormData();
  form.append("file", blob, name);
  const response = await fetch(path, { method: "POST", body: form, headers: withKey() });
  if (response.status === 401) askForKey();
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON: handled below */ }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return body;
}

async function loadModelInfo() {
  try {
    const response = await fetch("/v1/labels", { headers: withKey() });
    if (response.status === 401) {
      askForKey();
      return;
    }
    const info = await response.json();
    labels = info.labels;
    preprocess = info.model.preprocess || {};
    const features = info.model.features ? info.model.features.name : "?";
    $("model-info").textContent =
      `Model “${info.model.name}” (${info.model.model_name} on ${features}) · ` +
      `labels: ${info.labels.join(", ")}`;
    $("limits").textContent =
      ` · up to ${info.limits.max_upload_mb} MB and ${info.limits.max_duration_s} s`;
  } catch (_) {
    $("model-info").textContent = "Could not reach the server.";
  }
}

// --- analysis and rendering --------------------------------------------------------------

function setBusy(busy, message) {
  $("file-input").disabled = busy;
  $("status").textContent = message || "";
  document.body.setAttribute("aria-busy", busy ? "true" : "false");
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function analyse(blob, name) {
  showError("");
  setBusy(true, `Analysing ${name}…`);
  $("player").src = URL.createObjectURL(blob);
  $("player").hidden = false;
  try {
    const [prediction, timeline] = await Promise.all([
      post("/v1/predict", blob, name),
      post("/v1/timeline?hop=0.5", blob, name).catch((error) => ({ failed: error.message })),
    ]);
    render(prediction, timeline, name);
    setBusy(false, `Done: ${name} is ${prediction.label}.`);
  } catch (error) {
    $("result").hidden = true;
    setBusy(false, "");
    showError(`${name}: ${error.message}`);
  }
}

function render(prediction, timeline, name) {
  $("result-label").textContent = prediction.label;
  $("result-swatch").style.background = colour(prediction.label);
  $("result-confidence").textContent = `${percent(prediction.confidence)} confident`;
  const heard = preprocess.duration;
  const where = preprocess.crop === "start" ? "first" : "middle";
  const cropped = heard && prediction.duration > heard + 0.01
    ? ` · the verdict above is on the model's input, the ${where} ${seconds(heard)};` +
      " the timeline covers the whole recording"
    : "";
  $("result-meta").textContent = `${name} · ${seconds(prediction.duration)}${cropped}`;
  renderBars(prediction.probabilities);
  renderTimeline(timeline, prediction.duration);
  $("result").hidden = false;
}

function renderBars(probabilities) {
  const items = Object.entries(probabilities).sort((a, b) => b[1] - a[1]).map(([label, p]) =>
    element("li", { className: "bar-row" }, [
      element("span", { className: "bar-name", textContent: label }),
      element("div", {
        className: "bar-track", role: "meter", "aria-label": label,
        "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": (100 * p).toFixed(1),
      }, [element("div", {
        className: "prob-bar", style: { width: `${100 * p}%`, background: colour(label) },
      })]),
      element("span", { className: "bar-value", textContent: percent(p) }),
    ]));
  $("probabilities").replaceChildren(...items);
}

function renderTimeline(timeline, duration) {
  const note = $("timeline-note");
  if (timeline.failed) {
    $("timeline").replaceChildren();
    $("legend").replaceChildren();
    note.textContent = `No timeline: ${timeline.failed}`;
    note.hidden = false;
    return;
  }
  note.hidden = true;
  const total = timeline.duration || duration || 1;
  const used = new Set();
  const segments = timeline.segments.map((s) => {
    used.add(s.label);
    const detail = s.speech ? ` (${percent(s.confidence)})` : "";
    const text = `${s.start.toFixed(1)}–${s.end.toFixed(1)} s: ${s.label}${detail}`;
    const wide = (s.end - s.start) / total > 0.12;
    return element("div", {
      className: `segment${s.speech ? "" : " silence"}`, role: "listitem", title: text,
      "aria-label": text,
      style: { flexGrow: String(Math.max(s.end - s.start, 1e-3)), background: colour(s.label) },
    }, wide ? [element("span", { textContent: s.label, "aria-hidden": "true" })] : []);
  });
  $("timeline").replaceChildren(...segments);
  $("axis-end").textContent = seconds(total);
  const legend = [...labels, SILENCE].filter((label) => used.has(label)).map((label) =>
    element("li", {}, [
      element("span", { className: `swatch${label === SILENCE ? " silence" : ""}`,
                        style: { background: colour(label) }, "aria-hidden": "true" }),
      label,
    ]));
  $("legend").replaceChildren(...legend);
}

// --- the microphone ----------------------------------------------------------------------

const recorder = { context: null, stream: null, node: null, chunks: [], started: 0, timer: 0 };

function encodeWav(chunks, rate) {
  const length = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const view = new DataView(new ArrayBuffer(44 + 2 * length));
  const text = (offset, value) => [...value].forEach((c, i) =>
    view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * length, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true);
  view.setUint16(22, 1, true); view.setUint32(24, rate, true);
  view.setUint32(28, 2 * rate, true); view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, 2 * length, true);
  let offset = 44;
  for (const chunk of chunks) {
    for (const sample of chunk) {
      const clipped = Math.max(-1, Math.min(1, sample));
      view.setInt16(offset, clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff, true);
      offset += 2;
    }
  }
  return new Blob([view], { type: "audio/wav" });
}

async function startRecording() {
  showError("");
  recorder.stream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false,
             autoGainControl: false },
  });
  const context = new AudioContext();
  recorder.context = context;
  await context.audioWorklet.addModule("/static/recorder-worklet.js");
  await context.resume();
  const source = context.createMediaStreamSource(recorder.stream);
  recorder.node = new AudioWorkletNode(context, "pcm-recorder");
  recorder.chunks = [];
  recorder.node.port.onmessage = (event) => recorder.chunks.push(event.data);
  source.connect(recorder.node).connect(context.destination); // outputs silence
  recorder.started = performance.now();
  recorder.timer = setInterval(tick, 100);
  setRecording(true);
}

function tick() {
  const elapsed = (performance.now() - recorder.started) / 1000;
  $("record-time").textContent = `${elapsed.toFixed(1)} s`;
  if (elapsed >= MAX_RECORD_S) stopRecording();
}

async function stopRecording() {
  clearInterval(recorder.timer);
  const { context, stream, node } = recorder;
  node.port.postMessage("flush");
  await new Promise((resolve) => setTimeout(resolve, 50)); // let the last block arrive
  stream.getTracks().forEach((track) => track.stop());
  await context.close();
  setRecording(false);
  if (!recorder.chunks.length) {
    showError("The microphone gave no audio; check that it is connected and allowed.");
    return;
  }
  await analyse(encodeWav(recorder.chunks, context.sampleRate), "recording.wav");
}

function setRecording(on) {
  const button = $("record-button");
  button.setAttribute("aria-pressed", on ? "true" : "false");
  button.classList.toggle("recording", on);
  $("record-text").textContent = on ? "Stop" : "Record";
  if (on) $("status").textContent = "Recording… press Stop when done.";
}

async function toggleRecording() {
  const button = $("record-button");
  button.disabled = true;
  try {
    if (recorder.context && recorder.context.state !== "closed") await stopRecording();
    else await startRecording();
  } catch (error) {
    setRecording(false);
    showError(`Cannot record: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

// --- wiring ------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  loadModelInfo();
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("key-input").value);
    $("key-input").value = "";
    $("key-form").hidden = true;
    loadModelInfo();
  });
  $("file-input").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) analyse(file, file.name);
    event.target.value = ""; // choosing the same file again analyses it again
  });
  const canRecord = window.isSecureContext && navigator.mediaDevices && window.AudioWorkletNode;
  if (canRecord) {
    $("record-button").addEventListener("click", toggleRecording);
  } else {
    $("record-button").disabled = true;
    $("record-hint").textContent =
      "recording needs a secure page (https, or http://localhost / 127.0.0.1)";
  }
});
