// The system view: CPU, memory, disk, per-GPU cards with sparklines, and the sampling interval.

import uPlot from "/static/vendor/uplot/uPlot.esm.js";
import { api } from "./api.js";
import { showCluster } from "./cluster.js";
import { $, $$, busy, h, showError } from "./dom.js";
import * as fmt from "./format.js";
import { on, state, usageOf } from "./state.js";

// Points per sparkline; with the default 1 s interval that is the last two minutes.
const WINDOW = 120;
const STEPS = [0.25, 0.5, 1, 2, 5, 10, 30, 60];
// The theme's own colours (static/css/dashboard.css), read when a chart is drawn.
const themeColor = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
const COLORS = {
  get cpu() { return themeColor("--accent"); },
  get ram() { return themeColor("--ok"); },
  get util() { return themeColor("--accent"); },
  get vram() { return themeColor("--info"); },
};

const series = { time: [], cpu: [], ram: [], gpus: new Map() }; // gpu index -> {util, vram}
const charts = new Map(); // key -> uPlot
let visible = false;
let interval = null;

export function setupSystem() {
  on("stats", (sample) => {
    record(sample);
    if (visible) render(sample);
  });
  on("instances", () => {
    if (visible && state.stats) renderInstances();
  });
  $("#interval-down").addEventListener("click", (e) => stepInterval(e.currentTarget, -1));
  $("#interval-up").addEventListener("click", (e) => stepInterval(e.currentTarget, +1));
  window.addEventListener("resize", resizeCharts);
}

/** Seed the sparklines from the history endpoint so they are not empty on first view. */
export async function loadHistory() {
  try {
    const history = await api.history(WINDOW);
    reset();
    for (const sample of history.samples) record(sample);
    setIntervalValue(history.interval_seconds);
  } catch {
    // The live stream fills the sparklines anyway.
  }
}

export function showSystem(isVisible) {
  visible = isVisible;
  if (visible && state.stats) render(state.stats);
  // Charts drawn or resized while the view was hidden had no width to go by.
  if (visible) resizeCharts();
  if (visible && interval === null) api.interval().then((i) => setIntervalValue(i.interval_seconds), () => {});
  showCluster(visible);
}

function reset() {
  series.time.length = 0;
  series.cpu.length = 0;
  series.ram.length = 0;
  series.gpus.clear();
}

function record(sample) {
  if (series.time.length && sample.time <= series.time[series.time.length - 1]) return;
  series.time.push(sample.time);
  series.cpu.push(sample.system.cpu.percent);
  series.ram.push(sample.system.memory.percent);
  const seen = new Set();
  for (const gpu of sample.gpus) {
    seen.add(gpu.index);
    if (!series.gpus.has(gpu.index)) {
      series.gpus.set(gpu.index, { util: series.time.slice(1).map(() => null), vram: series.time.slice(1).map(() => null) });
    }
    const s = series.gpus.get(gpu.index);
    s.util.push(gpu.utilization_percent);
    s.vram.push(gpu.memory_total_bytes ? (100 * gpu.memory_used_bytes) / gpu.memory_total_bytes : null);
  }
  for (const [index, s] of series.gpus) {
    if (!seen.has(index)) {
      s.util.push(null);
      s.vram.push(null);
    }
  }
  if (series.time.length > WINDOW) {
    series.time.shift();
    series.cpu.shift();
    series.ram.shift();
    for (const s of series.gpus.values()) {
      s.util.shift();
      s.vram.shift();
    }
  }
  if (sample.interval_seconds) setIntervalValue(sample.interval_seconds);
}

function fig(name, text, root = document) {
  for (const el of $$(`[data-fig='${name}']`, root)) el.textContent = text;
}

function render(sample) {
  const { cpu, memory, swap, disk, load_average: load } = sample.system;
  fig("cpu-percent", fmt.percent(cpu.percent, 1));
  fig("cpu-count", String(cpu.count));
  fig("load", load.map((v) => v.toFixed(2)).join(" "));
  fig("ram-used", fmt.bytes(memory.used_bytes));
  fig("ram-total", fmt.bytes(memory.total_bytes));
  fig("ram-percent", fmt.percent(memory.percent, 0));
  fig("swap", swap.total_bytes ? `${fmt.bytes(swap.used_bytes)} / ${fmt.bytes(swap.total_bytes)}` : "none");
  fig("disk-free", fmt.bytes(disk.free_bytes));
  fig("disk-used", fmt.bytes(disk.used_bytes));
  fig("disk-total", fmt.bytes(disk.total_bytes));
  fig("disk-path", disk.path);
  $("[data-fig='disk-meter']").value = disk.percent ?? 0;
  spark("cpu", $("[data-spark='cpu']"), [series.cpu], [COLORS.cpu]);
  spark("ram", $("[data-spark='ram']"), [series.ram], [COLORS.ram]);
  renderGpus(sample);
  renderInstances();
}

function renderGpus(sample) {
  const box = $("#gpu-cards");
  const none = sample.gpus.length === 0;
  $("#no-gpu").hidden = !none;
  $("#no-gpu-reason").textContent = none ? sample.gpu_reason || "" : "";
  const wanted = new Set(sample.gpus.map((g) => `gpu-${g.index}`));
  for (const card of $$(".gpu-card", box)) {
    if (!wanted.has(card.id)) {
      charts.get(card.id)?.destroy();
      charts.delete(card.id);
      card.remove();
    }
  }
  for (const gpu of sample.gpus) {
    const id = `gpu-${gpu.index}`;
    let card = document.getElementById(id);
    if (!card) {
      card = gpuCard(gpu);
      box.append(card);
    }
    fillGpu(card, gpu);
    const s = series.gpus.get(gpu.index);
    if (s) spark(id, $(".spark", card), [s.util, s.vram], [COLORS.util, COLORS.vram]);
  }
}

function gpuCard(gpu) {
  const dd = (name) => h("dd", { "data-fig": name, text: fmt.DASH });
  return h("article", { class: "card gpu-card", id: `gpu-${gpu.index}`, "aria-label": `GPU ${gpu.index}` },
    h("h2", {}, `GPU ${gpu.index} `, h("span", { class: "gpu-name", "data-fig": "name" })),
    h("dl", { class: "gpu-figs" },
      h("div", {}, h("dt", { text: "Utilisation" }), dd("util")),
      h("div", {}, h("dt", { text: "VRAM" }), dd("vram")),
      h("div", {}, h("dt", { text: "Temperature" }), dd("temp")),
      h("div", {}, h("dt", { text: "Power" }), dd("power"))),
    h("meter", { "data-fig": "vram-meter", min: "0", max: "100", low: "85", high: "95", optimum: "0", value: "0", "aria-label": "VRAM used" }),
    h("p", { class: "gpu-error", "data-fig": "error", hidden: true }),
    h("div", { class: "spark", "aria-hidden": "true" }),
    h("p", { class: "spark-legend", "aria-hidden": "true" },
      h("span", {}, h("span", { class: "sw sw-util" }), "util %"),
      h("span", {}, h("span", { class: "sw sw-vram" }), "VRAM %")));
}

function fillGpu(card, gpu) {
  fig("name", gpu.name || "", card);
  fig("util", fmt.percent(gpu.utilization_percent, 0), card);
  fig("vram", `${fmt.bytes(gpu.memory_used_bytes)} / ${fmt.bytes(gpu.memory_total_bytes)}`, card);
  fig("temp", fmt.number(gpu.temperature_celsius, 0, " °C"), card);
  const limit = gpu.power_limit_watts ? ` / ${gpu.power_limit_watts.toFixed(0)} W` : "";
  fig("power", gpu.power_watts === null ? fmt.DASH : `${gpu.power_watts.toFixed(0)} W${limit}`, card);
  const used = gpu.memory_total_bytes ? (100 * gpu.memory_used_bytes) / gpu.memory_total_bytes : 0;
  $("[data-fig='vram-meter']", card).value = used;
  const error = $("[data-fig='error']", card);
  error.textContent = gpu.error || "";
  error.hidden = !gpu.error;
}

function renderInstances() {
  const box = $("#system-instances");
  const active = [...state.instances.values()].filter((i) => !["stopped", "error"].includes(i.status));
  box.replaceChildren(...active.map((inst) => {
    const usage = usageOf(inst);
    return h("article", { class: "card inst-card", "aria-label": inst.name },
      h("span", { class: "status-badge", "data-status": inst.status, text: inst.status }),
      h("h2", { text: inst.name }),
      h("dl", {},
        h("dt", { text: "CPU" }), h("dd", { text: fmt.percent(usage?.cpu_percent, 0) }),
        h("dt", { text: "RAM" }), h("dd", { text: fmt.bytes(usage?.rss_bytes) }),
        h("dt", { text: "VRAM" }), h("dd", { text: fmt.bytes(usage?.gpu_memory_bytes) }),
        h("dt", { text: "Processes" }), h("dd", { text: usage ? String(usage.process_count) : fmt.DASH })));
  }));
  if (active.length === 0) box.append(h("p", { class: "muted", text: "No instance is running." }));
}

function spark(key, host, ys, colors) {
  if (!host) return;
  const data = [series.time, ...ys];
  let chart = charts.get(key);
  if (chart && chart.root.parentElement !== host) {
    chart.destroy();
    chart = null;
  }
  if (!chart) {
    chart = new uPlot({
      width: host.clientWidth || 240,
      height: 60,
      legend: { show: false },
      cursor: { show: false },
      select: { show: false },
      axes: [{ show: false }, { show: false }],
      // A little headroom so a line at 100 % is not drawn on the very edge and lost.
      scales: { x: { time: true }, y: { range: [0, 104] } },
      series: [{}, ...colors.map((stroke) => ({ stroke, width: 1.5, fill: `${stroke}22`, points: { show: false } }))],
    }, data, host);
    charts.set(key, chart);
  } else {
    chart.setData(data);
  }
}

function resizeCharts() {
  for (const chart of charts.values()) {
    const host = chart.root.parentElement;
    if (host?.clientWidth) chart.setSize({ width: host.clientWidth, height: 60 });
  }
}

function setIntervalValue(seconds) {
  interval = seconds;
  $("#interval-value").textContent = fmt.seconds(seconds);
  $("#interval-down").disabled = seconds <= STEPS[0];
  $("#interval-up").disabled = seconds >= STEPS[STEPS.length - 1];
}

async function stepInterval(button, direction) {
  const now = interval ?? 1;
  const next = direction > 0 ? STEPS.find((s) => s > now) : [...STEPS].reverse().find((s) => s < now);
  if (next === undefined) return;
  await busy(button, async () => {
    try {
      const result = await api.setInterval(next);
      setIntervalValue(result.interval_seconds);
      showError($("#interval-error"), "");
    } catch (err) {
      showError($("#interval-error"), err.message);
    }
  });
}
