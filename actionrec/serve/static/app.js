// actionrec web page: a short clip goes to /v1/annotate (top-5 and the annotated clip); a long one becomes a job
// (/v1/jobs) with a progress bar, then a timeline of its action segments under the player. /jobs/ID shows one job.
"use strict";
const $ = (id) => document.getElementById(id);
const ROOT = new URL(".", document.baseURI); // the app's root, also on /jobs/ID (whose page has <base href="../">)
const LONG_S = 10; // videos longer than this become jobs
const COLOURS = ["#2f6fed", "#0b8a53", "#d9480f", "#7b2fbf", "#c2255c", "#1098ad", "#e8a200", "#5c6478", "#364fc7", "#2b8a3e"];
let previewUrl = null, annotatedUrl = null, service = {}, pollTimer = null, currentJob = null;

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function authHeaders() {
  const t = $("token").value.trim();
  return t ? { Authorization: "Bearer " + t } : {};
}

function api(path, options) {
  return fetch(new URL(path, ROOT), { ...(options || {}), headers: { ...authHeaders(), ...((options || {}).headers || {}) } });
}

async function errorText(r) {
  let msg = r.statusText;
  try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
  if (r.status === 401) $("token-row").hidden = false;
  return `Error ${r.status}: ${msg}`;
}

async function showModel() {
  for (;;) {
    const r = await api("v1/model").catch(() => null);
    if (r && r.ok) {
      const m = await r.json();
      service = m.service || {};
      $("model").textContent = `${m.model} · ${m.arch} · ${m.num_classes} classes · ${m.backend}`;
      $("job-row").hidden = !service.jobs;
      $("long-s").textContent = LONG_S;
      return;
    }
    if (r && r.status === 401) { $("token-row").hidden = false; $("model").textContent = "this server needs an access token"; return; }
    await new Promise((ok) => setTimeout(ok, 2000));
  }
}

function showPreview(file, loop) {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file);
  const gif = file.type === "image/gif";
  $("preview").hidden = gif;
  $("preview-img").hidden = !gif;
  $("preview").loop = loop;
  if (gif) { $("preview-img").src = previewUrl; $("preview").removeAttribute("src"); }
  else { $("preview").src = previewUrl; if (loop) $("preview").play().catch(() => {}); }
  $("input").hidden = false;
}

function videoDuration(file) {
  if (!file.type.startsWith("video/")) return Promise.resolve(NaN);
  return new Promise((done) => {
    const v = document.createElement("video");
    const url = URL.createObjectURL(file);
    const finish = (d) => { URL.revokeObjectURL(url); done(d); };
    v.preload = "metadata";
    v.onloadedmetadata = () => finish(v.duration);
    v.onerror = () => finish(NaN);
    setTimeout(() => finish(NaN), 3000);
    v.src = url;
  });
}

async function choose(file) {
  const seconds = await videoDuration(file);
  const long = seconds > LONG_S || seconds > service.max_duration || file.size > service.max_upload_bytes;
  if (service.jobs && ($("as-job").checked || long)) sendJob(file);
  else send(file);
}

// --- a short clip: top-5 and the annotated video -----------------------------------------------
function showBars(result) {
  const bars = $("bars");
  bars.textContent = "";
  for (const p of result.predictions) {
    const li = document.createElement("li");
    const label = document.createElement("span"); label.className = "label"; label.textContent = p.label; label.title = p.label;
    const track = document.createElement("span"); track.className = "track";
    const fill = document.createElement("span"); fill.className = "fill"; fill.style.display = "block";
    fill.style.width = (100 * p.score).toFixed(1) + "%";
    track.appendChild(fill);
    const score = document.createElement("span"); score.className = "score"; score.textContent = (100 * p.score).toFixed(1) + "%";
    li.append(label, track, score);
    bars.appendChild(li);
  }
  $("top1").textContent = result.predictions[0].label;
  const t = result.timings || {};
  $("timings").textContent = `${result.clips} clip(s) of ${result.duration.toFixed(1)} s of video · server time ${(t.total || 0).toFixed(2)} s`;
  $("result").hidden = false;
}

function resetResults() {
  for (const id of ["result", "annotated-box", "job", "timeline-box", "share", "local-row"]) $(id).hidden = true;
  if (pollTimer) clearTimeout(pollTimer);
}

async function send(file) {
  setStatus(`Uploading ${file.name} and recognising the action…`);
  resetResults();
  showPreview(file, true);
  const body = new FormData();
  body.append("file", file, file.name);
  let r;
  try {
    r = await api("v1/annotate?topk=5", { method: "POST", body });
  } catch (e) {
    setStatus("The server cannot be reached: " + e.message, true);
    return;
  }
  if (!r.ok) { setStatus(await errorText(r), true); return; }
  showBars(JSON.parse(r.headers.get("X-Actionrec-Prediction")));
  if (annotatedUrl) URL.revokeObjectURL(annotatedUrl);
  annotatedUrl = URL.createObjectURL(await r.blob());
  $("annotated").src = annotatedUrl;
  $("download").href = annotatedUrl;
  $("download").download = file.name.replace(/\.[^.]*$/, "") + "-annotated.mp4";
  $("annotated-box").hidden = false;
  setStatus("Done.");
}

// --- a long video: a job, its progress, its timeline -------------------------------------------
function sendJob(file) {
  resetResults();
  showPreview(file, false);
  $("job").hidden = false;
  $("job-progress").value = 0;
  $("cancel").hidden = true;
  setStatus(`Uploading ${file.name}…`);
  const body = new FormData();
  body.append("file", file, file.name);
  const xhr = new XMLHttpRequest(); // fetch cannot report upload progress
  xhr.open("POST", new URL("v1/jobs", ROOT));
  for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) $("job-status").textContent = `uploading: ${Math.round((100 * e.loaded) / e.total)}%`;
  };
  xhr.onerror = () => setStatus("The server cannot be reached.", true);
  xhr.onload = () => {
    let answer = {};
    try { answer = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
    if (xhr.status !== 202) {
      if (xhr.status === 401) $("token-row").hidden = false;
      setStatus(`Error ${xhr.status}: ${answer.error || xhr.statusText}`, true);
      return;
    }
    history.replaceState(null, "", new URL("jobs/" + answer.id, ROOT));
    follow(answer.id);
  };
  xhr.send(body);
}

function clock(s) {
  const m = Math.floor(s / 60), sec = s - 60 * m;
  return `${m}:${sec.toFixed(1).padStart(4, "0")}`;
}

async function follow(id) {
  currentJob = id;
  $("job").hidden = false;
  $("cancel").hidden = false;
  const r = await api("v1/jobs/" + id).catch(() => null);
  if (currentJob !== id) return;
  if (!r) { pollTimer = setTimeout(() => follow(id), 2000); return; }
  if (!r.ok) { $("job").hidden = true; setStatus(await errorText(r), true); return; }
  const job = await r.json();
  $("job-progress").value = job.progress;
  const eta = job.eta_s == null ? "" : ` · about ${Math.ceil(job.eta_s)} s left`;
  const windows = job.windows_total ? ` · window ${job.windows_done} of ${job.windows_total}` : "";
  $("job-status").textContent = `${job.state}: ${job.progress.toFixed(0)}%${windows}${eta}`;
  setStatus(`${job.video}: ${job.state === "queued" ? "waiting for its turn" : "finding the actions"}…`);
  if (job.state === "queued" || job.state === "running") { pollTimer = setTimeout(() => follow(id), 1000); return; }
  $("cancel").hidden = true;
  if (job.state !== "done") { setStatus(`The job ${job.state}${job.error ? ": " + job.error : "."}`, job.state === "failed"); return; }
  const res = await api(`v1/jobs/${id}/result?windows=false`);
  if (!res.ok) { setStatus(await errorText(res), true); return; }
  $("job").hidden = true;
  showTimeline(await res.json(), id);
}

function showTimeline(result, id) {
  const duration = result.duration || 1;
  const labels = [...new Set(result.segments.map((s) => s.label))];
  const colour = (label) => COLOURS[labels.indexOf(label) % COLOURS.length];
  const timeline = $("timeline"), list = $("segments");
  timeline.textContent = "";
  list.textContent = "";
  for (const label of labels) {
    const lane = document.createElement("div"); lane.className = "lane"; lane.setAttribute("role", "listitem");
    const name = document.createElement("span"); name.className = "lane-label"; name.textContent = label; name.title = label;
    const track = document.createElement("div"); track.className = "lane-track";
    for (const s of result.segments.filter((x) => x.label === label)) track.appendChild(band(s, duration, colour(label)));
    const head = document.createElement("div"); head.className = "playhead"; track.appendChild(head);
    lane.append(name, track);
    timeline.appendChild(lane);
  }
  for (const s of result.segments) {
    const li = document.createElement("li");
    const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = colour(s.label);
    const label = document.createElement("span"); label.className = "label"; label.textContent = s.label;
    const when = document.createElement("span"); when.textContent = `${clock(s.start)}–${clock(s.end)}`;
    const score = document.createElement("span"); score.textContent = (100 * s.score).toFixed(0) + "%";
    li.append(sw, label, when, score);
    li.addEventListener("click", () => seek(s.start));
    list.appendChild(li);
  }
  $("axis-end").textContent = clock(duration);
  const link = new URL("jobs/" + id, ROOT).href;
  $("share-link").href = link;
  $("share-link").textContent = link;
  $("share").hidden = false;
  $("local-row").hidden = !!$("preview").getAttribute("src");
  $("timeline-box").hidden = false;
  const n = result.segments.length;
  setStatus(n ? `Done: ${n} segment(s) of ${labels.length} action(s) in ${clock(duration)}.` : "Done: no confident action found.");
}

function band(s, duration, colour) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "band";
  b.style.left = (100 * s.start / duration).toFixed(3) + "%";
  b.style.width = (100 * (s.end - s.start) / duration).toFixed(3) + "%";
  b.style.background = colour;
  const text = `${s.label} · ${(100 * s.score).toFixed(1)}% · ${clock(s.start)}–${clock(s.end)}`;
  b.setAttribute("aria-label", text);
  b.dataset.start = s.start;
  b.addEventListener("mouseenter", (e) => showTip(text, e));
  b.addEventListener("mousemove", (e) => showTip(text, e));
  b.addEventListener("mouseleave", () => { $("tip").hidden = true; });
  b.addEventListener("click", () => seek(s.start));
  return b;
}

function showTip(text, e) {
  const tip = $("tip");
  tip.textContent = text;
  tip.hidden = false;
  const x = Math.min(e.clientX + 12, window.innerWidth - tip.offsetWidth - 4);
  tip.style.left = Math.max(4, x) + "px";
  tip.style.top = Math.max(4, e.clientY - tip.offsetHeight - 12) + "px"; // above the pointer: the lanes below stay visible
}

function seek(t) {
  const v = $("preview");
  if (!v.getAttribute("src")) return;
  v.currentTime = t;
  v.play().catch(() => {});
}

function movePlayheads() {
  const v = $("preview"), d = v.duration;
  if (!d) return;
  for (const h of document.querySelectorAll(".playhead")) h.style.left = (100 * v.currentTime / d).toFixed(3) + "%";
}

$("file").addEventListener("change", () => { if ($("file").files[0]) choose($("file").files[0]); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files[0]) choose(e.dataTransfer.files[0]);
});
$("cancel").addEventListener("click", async () => {
  if (!currentJob) return;
  const r = await api("v1/jobs/" + currentJob, { method: "DELETE" });
  if (!r.ok) setStatus(await errorText(r), true);
});
$("local-file").addEventListener("change", () => {
  const f = $("local-file").files[0];
  if (f) { showPreview(f, false); $("local-row").hidden = true; }
});
$("preview").addEventListener("timeupdate", movePlayheads);
$("token").addEventListener("change", () => { showModel(); if (currentJob) follow(currentJob); });
showModel();
const shared = location.pathname.match(/\/jobs\/([A-Za-z0-9_-]+)$/);
if (shared) follow(shared[1]);
