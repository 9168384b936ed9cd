// The system strip: CPU, RAM and each GPU's utilisation and VRAM in one line under the header,
// always in sight, from the monitor's live stream; each figure links to the System view.

import { $, $$, h } from "./dom.js";
import * as fmt from "./format.js";
import { on } from "./state.js";

function fill(item, percent, text, title) {
  $("meter", item).value = percent ?? 0;
  $("[data-strip-value]", item).textContent = text;
  item.title = title;
}

function gpuItem(index) {
  const meter = (label) => h("meter", { min: "0", max: "100", low: "85", high: "95", optimum: "0", value: "0",
    "aria-hidden": "true", "data-meter": label });
  return h("a", { class: "strip-item", href: "#/system", "data-strip": `gpu-${index}` },
    h("span", { class: "strip-name", text: `GPU ${index}` }),
    meter("util"), h("span", { class: "strip-value", "data-strip-util": "" }),
    meter("vram"), h("span", { class: "strip-value", "data-strip-vram": "" }));
}

function renderGpus(gpus) {
  const box = $("#strip-gpus");
  const wanted = new Set(gpus.map((gpu) => `gpu-${gpu.index}`));
  for (const item of $$("[data-strip]", box)) if (!wanted.has(item.dataset.strip)) item.remove();
  for (const gpu of gpus) {
    let item = $(`[data-strip='gpu-${gpu.index}']`, box);
    if (!item) {
      item = gpuItem(gpu.index);
      box.append(item);
    }
    const vram = gpu.memory_total_bytes ? (100 * gpu.memory_used_bytes) / gpu.memory_total_bytes : null;
    $("[data-meter='util']", item).value = gpu.utilization_percent ?? 0;
    $("[data-meter='vram']", item).value = vram ?? 0;
    $("[data-strip-util]", item).textContent = fmt.percent(gpu.utilization_percent, 0);
    const used = `${fmt.bytes(gpu.memory_used_bytes)} / ${fmt.bytes(gpu.memory_total_bytes)}`;
    $("[data-strip-vram]", item).textContent = used;
    item.title = `GPU ${gpu.index}${gpu.name ? ` (${gpu.name})` : ""}: `
      + `${fmt.percent(gpu.utilization_percent, 0)} busy, VRAM ${fmt.percent(vram, 0)} used`;
  }
}

function render(sample) {
  const strip = $("#system-strip");
  const { cpu, memory } = sample.system;
  fill($("[data-strip='cpu']", strip), cpu.percent, fmt.percent(cpu.percent, 0),
    `CPU: ${fmt.percent(cpu.percent, 1)} of ${cpu.count} cores`);
  fill($("[data-strip='ram']", strip), memory.percent,
    `${fmt.bytes(memory.used_bytes)} / ${fmt.bytes(memory.total_bytes)}`,
    `Memory: ${fmt.percent(memory.percent, 0)} used`);
  renderGpus(sample.gpus ?? []);
  // When the figures last changed, for whoever needs to know they are live (the tests do).
  strip.dataset.sampleTime = String(sample.time);
}

export function setupStrip() {
  on("stats", render);
}
