// actionrec web page: upload a video to /v1/annotate, show the top-5 and the annotated clip.
"use strict";
const $ = (id) => document.getElementById(id);
let previewUrl = null, annotatedUrl = null;

function setStatus(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function authHeaders() {
  const t = $("token").value.trim();
  return t ? { Authorization: "Bearer " + t } : {};
}

async function showModel() {
  for (;;) {
    const r = await fetch("v1/model", { headers: authHeaders() }).catch(() => null);
    if (r && r.ok) {
      const m = await r.json();
      $("model").textContent = `${m.model} · ${m.arch} · ${m.num_classes} classes · ${m.backend}`;
      return;
    }
    if (r && r.status === 401) { $("token-row").hidden = false; $("model").textContent = "this server needs an access token"; return; }
    await new Promise((ok) => setTimeout(ok, 2000));
  }
}

function showPreview(file) {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file);
  const gif = file.type === "image/gif";
  $("preview").hidden = gif;
  $("preview-img").hidden = !gif;
  if (gif) { $("preview-img").src = previewUrl; $("preview").removeAttribute("src"); }
  else { $("preview").src = previewUrl; $("preview").play().catch(() => {}); }
  $("input").hidden = false;
}

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

async function send(file) {
  setStatus(`Uploading ${file.name} and recognising the action…`);
  $("result").hidden = true;
  $("annotated-box").hidden = true;
  showPreview(file);
  const body = new FormData();
  body.append("file", file, file.name);
  let r;
  try {
    r = await fetch("v1/annotate?topk=5", { method: "POST", body, headers: authHeaders() });
  } catch (e) {
    setStatus("The server cannot be reached: " + e.message, true);
    return;
  }
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    if (r.status === 401) $("token-row").hidden = false;
    setStatus(`Error ${r.status}: ${msg}`, true);
    return;
  }
  showBars(JSON.parse(r.headers.get("X-Actionrec-Prediction")));
  if (annotatedUrl) URL.revokeObjectURL(annotatedUrl);
  annotatedUrl = URL.createObjectURL(await r.blob());
  $("annotated").src = annotatedUrl;
  $("download").href = annotatedUrl;
  $("download").download = file.name.replace(/\.[^.]*$/, "") + "-annotated.mp4";
  $("annotated-box").hidden = false;
  setStatus("Done.");
}

$("file").addEventListener("change", () => { if ($("file").files[0]) send($("file").files[0]); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files[0]) send(e.dataTransfer.files[0]);
});
$("token").addEventListener("change", showModel);
showModel();
