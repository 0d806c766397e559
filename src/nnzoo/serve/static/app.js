// The page of `nnzoo serve`: plain JavaScript, no build step. It asks GET /v1/models what is loaded and shows a
// section per kind: draw a digit (image classifiers), classify a text (text classifiers), a form of a table row
// (table classifiers and regressors), write a poem (language models), a gallery (GANs and VAEs).
"use strict";

const $ = (id) => document.getElementById(id);
let MODELS = [];

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
  };
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function fillSelect(select, models) {
  select.innerHTML = "";
  for (const m of models) {
    const option = document.createElement("option");
    option.value = m.name;
    option.textContent = `${m.name} (${m.model}, ${m.dataset})`;
    select.appendChild(option);
  }
}

const chosen = (select) => MODELS.find((m) => m.name === select.value);

// Runs `work` with `button` disabled; the one sentence of an error it raises goes to `errorBox`.
async function whileBusy(button, errorBox, work) {
  errorBox.textContent = "";
  button.disabled = true;
  try {
    await work();
  } catch (err) {
    errorBox.textContent = err.message;
  } finally {
    button.disabled = false;
  }
}

// ---- draw a digit ---------------------------------------------------------------------------------------------
const canvas = $("digit-canvas");
const pen = canvas.getContext("2d", {willReadFrequently: true});
let drawing = false;
let lastPoint = null;
let predictSerial = 0;

function clearCanvas() {
  pen.fillStyle = "black";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  $("prediction").textContent = "";
  $("probs").innerHTML = "";
  $("draw-error").textContent = "";
  const preview = $("model-input").getContext("2d");
  preview.fillStyle = "black";
  preview.fillRect(0, 0, preview.canvas.width, preview.canvas.height);
}

function point(event) {
  const r = canvas.getBoundingClientRect();
  return [(event.clientX - r.left) * canvas.width / r.width, (event.clientY - r.top) * canvas.height / r.height];
}

function stroke(to) {
  // White strokes on black, as MNIST's digits are; about as thick, relative to the frame, as theirs.
  pen.strokeStyle = "white";
  pen.fillStyle = "white";
  pen.lineWidth = canvas.width / 14;
  pen.lineCap = "round";
  pen.lineJoin = "round";
  pen.beginPath();
  const from = lastPoint || to;
  pen.moveTo(from[0], from[1]);
  pen.lineTo(to[0], to[1]);
  pen.stroke();
  lastPoint = to;
}

canvas.addEventListener("pointerdown", (e) => {
  drawing = true;
  lastPoint = null;
  canvas.setPointerCapture(e.pointerId);
  stroke(point(e));
});
canvas.addEventListener("pointermove", (e) => { if (drawing) stroke(point(e)); });
for (const type of ["pointerup", "pointercancel"]) {
  canvas.addEventListener(type, () => {
    if (!drawing) return;
    drawing = false;
    predict();
  });
}
$("clear-button").addEventListener("click", clearCanvas);
$("predict-button").addEventListener("click", () => predict());
$("draw-model").addEventListener("change", () => predict());

// The drawing as it is, at the canvas's own size: one gray value per pixel (the canvas is gray, so its red
// channel). The server prepares it as it prepares an uploaded file (images.py, by the rule of the model's
// dataset), and answers with what the model saw, which the page shows beside the drawing.
function canvasPixels() {
  const {data} = pen.getImageData(0, 0, canvas.width, canvas.height);
  const rows = [];
  let ink = false;
  for (let y = 0; y < canvas.height; y++) {
    const row = new Array(canvas.width);
    for (let x = 0; x < canvas.width; x++) {
      row[x] = data[4 * (y * canvas.width + x)];
      ink = ink || row[x] > 32;
    }
    rows.push(row);
  }
  return ink ? rows : null;
}

// The model's input (rows of gray values, or of [r, g, b]) drawn large, pixel by pixel.
function showModelInput(rows) {
  const height = rows.length, width = rows[0].length;
  const small = document.createElement("canvas");
  small.width = width;
  small.height = height;
  const sc = small.getContext("2d");
  const image = sc.createImageData(width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = rows[y][x];
      const [r, g, b] = Array.isArray(v) ? v : [v, v, v];
      image.data.set([r, g, b, 255], 4 * (y * width + x));
    }
  }
  sc.putImageData(image, 0, 0);
  const preview = $("model-input").getContext("2d");
  preview.imageSmoothingEnabled = false;
  preview.drawImage(small, 0, 0, preview.canvas.width, preview.canvas.height);
}

async function predict() {
  const model = chosen($("draw-model"));
  if (!model) return;
  const pixels = canvasPixels();
  if (!pixels) return;
  const serial = ++predictSerial;
  $("draw-error").textContent = "";
  try {
    const path = `/v1/models/${encodeURIComponent(model.name)}/predict?top_k=${model.num_classes}&show_input=true`;
    const r = await api(path, {pixels});
    if (serial !== predictSerial) return;
    showModelInput(r.input);
    showProbabilities(model, r);
  } catch (err) {
    if (serial === predictSerial) $("draw-error").textContent = err.message;
  }
}

// The answer of a classifier: its top class in `prediction`, and a bar per class, in the model's order, in `list`.
function showProbabilities(model, r, prediction = $("prediction"), list = $("probs")) {
  prediction.textContent = `${r.label} · ${(100 * r.probability).toFixed(1)}%`;
  list.innerHTML = "";
  for (const name of model.classes) {
    const p = r.probabilities[name];
    const li = document.createElement("li");
    li.dataset.label = name;
    li.dataset.probability = String(p);
    if (name === r.label) li.className = "top";
    const label = document.createElement("span");
    label.textContent = name;
    const track = document.createElement("span");
    track.className = "track";
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${(100 * p).toFixed(1)}%`;
    track.appendChild(bar);
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = `${(100 * p).toFixed(1)}%`;
    li.append(label, track, pct);
    list.appendChild(li);
  }
}

// ---- who wrote this poem? ------------------------------------------------------------------------------------
$("authors-button").addEventListener("click", () => {
  const model = chosen($("authors-model"));
  for (const id of ["authors-prediction", "authors-notes"]) $(id).textContent = "";
  $("authors-probs").innerHTML = "";
  return whileBusy($("authors-button"), $("authors-error"), async () => {
    const r = await api(`/v1/models/${encodeURIComponent(model.name)}/predict?top_k=${model.num_classes}`,
                        {text: $("authors-text").value.trim()});
    showProbabilities(model, r, $("authors-prediction"), $("authors-probs"));
    $("authors-notes").textContent = (r.notes || []).join("; ");
  });
});

// ---- a table row ---------------------------------------------------------------------------------------------
function showTableForm() {
  const model = chosen($("table-model"));
  const form = $("table-form");
  form.innerHTML = "";
  if (!model) return;
  for (const column of model.columns) {
    const label = document.createElement("label");
    label.textContent = column.name + " ";
    let input;
    if (column.type === "number") {
      input = document.createElement("input");
      input.type = "number";
      input.step = "any";
      input.value = String(Number(column.median.toPrecision(6)));
    } else {
      input = document.createElement("select");
      for (const value of ["", ...column.categories]) {
        const option = document.createElement("option");
        option.value = value;
        option.textContent = value === "" ? "(missing 缺失)" : value;
        input.appendChild(option);
      }
      input.value = column.categories[0] ?? "";
    }
    input.name = column.name;
    input.dataset.type = column.type;
    label.appendChild(input);
    form.appendChild(label);
  }
}
$("table-model").addEventListener("change", showTableForm);

$("table-button").addEventListener("click", () => {
  const model = chosen($("table-model"));
  const row = {};
  for (const input of $("table-form").querySelectorAll("input, select")) {
    const v = input.value.trim();
    row[input.name] = v === "" ? null : input.dataset.type === "number" ? Number(v) : v;
  }
  $("table-prediction").textContent = "";
  $("table-probs").innerHTML = "";
  return whileBusy($("table-button"), $("table-error"), async () => {
    const k = Math.max(1, model.num_classes);
    const r = await api(`/v1/models/${encodeURIComponent(model.name)}/predict?top_k=${k}`, {row});
    if (r.value !== undefined) $("table-prediction").textContent = `${r.target} ≈ ${Number(r.value.toPrecision(5))}`;
    else showProbabilities(model, r, $("table-prediction"), $("table-probs"));
  });
});

// ---- write a poem ---------------------------------------------------------------------------------------------
function showAcrosticField() {
  const model = chosen($("write-model"));
  $("acrostic-field").hidden = !(model && model.acrostic);
}
$("write-model").addEventListener("change", showAcrosticField);

$("write-button").addEventListener("click", () => {
  const model = chosen($("write-model"));
  const acrostic = $("acrostic").value.trim();
  const body = {temperature: Number($("temperature").value) || 1.0};
  if (model.acrostic && acrostic) body.acrostic = acrostic;
  else {
    body.prompt = $("prompt").value;
    body.length = Number($("length").value) || 120;
  }
  if ($("text-seed").value !== "") body.seed = Number($("text-seed").value);
  return whileBusy($("write-button"), $("write-error"), async () => {
    const r = await api(`/v1/models/${encodeURIComponent(model.name)}/generate`, body);
    $("poem-text").textContent = r.text;
    const notes = (r.notes || []).join("; ");
    $("poem-meta").textContent = `seed 种子 ${r.seed} · ${Math.round(r.tokens_per_s)} chars/s${notes ? " · " + notes : ""}`;
  });
});

// ---- gallery --------------------------------------------------------------------------------------------------
function showLabelField() {
  const model = chosen($("gallery-model"));
  const select = $("gallery-label");
  select.innerHTML = "";
  $("label-field").hidden = !(model && model.conditional);
  if (!model || !model.conditional) return;
  model.classes.forEach((name, i) => {
    const option = document.createElement("option");
    option.value = String(i);
    option.textContent = `${i} ${name}`;
    select.appendChild(option);
  });
}

function newSamples() {
  const model = chosen($("gallery-model"));
  if (!model) return;
  const body = {n: 16};
  if (model.conditional) body.label = Number($("gallery-label").value);
  return whileBusy($("samples-button"), $("gallery-error"), async () => {
    const r = await api(`/v1/models/${encodeURIComponent(model.name)}/generate?format=json`, body);
    $("samples").src = `data:${r.mime};base64,${r.png_base64}`;
    $("samples-meta").textContent = `${r.n} images 张 · seed 种子 ${r.seed}${r.label !== undefined ? " · class 类别 " + r.label : ""}`;
  });
}
$("samples-button").addEventListener("click", newSamples);
$("gallery-model").addEventListener("change", () => { showLabelField(); newSamples(); });
$("gallery-label").addEventListener("change", newSamples);

// ---- start ----------------------------------------------------------------------------------------------------
async function start() {
  try {
    const {models, limits} = await api("/v1/models");
    MODELS = models;
    const of = (kind, test = () => true) => models.filter((m) => m.kind === kind && test(m));
    const classifiers = of("classifier");
    const readers = of("text-classifier");
    const tables = of("table");
    const writers = of("text");
    const drawers = of("images", (m) => m.can_sample);
    $("draw").hidden = classifiers.length === 0;
    $("authors").hidden = readers.length === 0;
    $("write").hidden = writers.length === 0;
    $("gallery").hidden = drawers.length === 0;
    $("table").hidden = tables.length === 0;
    $("none").hidden = classifiers.length + readers.length + tables.length + writers.length + drawers.length > 0;
    fillSelect($("draw-model"), classifiers);
    fillSelect($("authors-model"), readers);
    fillSelect($("table-model"), tables);
    fillSelect($("write-model"), writers);
    fillSelect($("gallery-model"), drawers);
    $("prompt").maxLength = limits.max_prompt_chars;
    $("acrostic").maxLength = limits.max_acrostic_chars;
    $("length").max = limits.max_length;
    $("temperature").max = limits.max_temperature;
    clearCanvas();
    showAcrosticField();
    showLabelField();
    showTableForm();
    if (drawers.length) newSamples();
    $("status").textContent = `${models.length} model(s) loaded · 已加载 ${models.length} 个模型`;
    document.body.dataset.ready = "true";
  } catch (err) {
    $("status").textContent = `Could not load the models · 无法加载模型: ${err.message}`;
  }
}

start();
