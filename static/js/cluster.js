// The System view's cluster list: each Slurm node's state, GPUs, CPUs and memory, and the
// instances running on it with their jobs' memory. Shown only when AiKore runs with --slurm;
// read while the view is open.

import { api } from "./api.js";
import { $, h, showError } from "./dom.js";
import * as fmt from "./format.js";
import { state } from "./state.js";

// Slurm's own figures change on its scheduler's pace, not the monitor's: every few seconds is plenty.
const REFRESH_MS = 5000;
let timer = null;

export function showCluster(visible) {
  clearTimeout(timer);
  timer = null;
  if (visible) refresh();
}

async function refresh() {
  try {
    const cluster = await api.cluster();
    $("#cluster").hidden = !cluster.enabled;
    if (!cluster.enabled) return;
    render(cluster);
    showError($("#cluster-error"), "");
  } catch (err) {
    showError($("#cluster-error"), err.message);
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

function render(cluster) {
  const partitions = cluster.partitions.map((p) => `${p.name}${p.available ? "" : " (down)"}`).join(", ");
  $("#cluster-partitions").textContent = partitions ? `Partitions: ${partitions}` : "No partition.";
  const instances = [...state.instances.values()];
  $("#cluster-nodes").replaceChildren(...cluster.nodes.map((node) => {
    const here = instances.filter((i) => i.node === node.name && !["stopped", "error"].includes(i.status));
    const jobs = new Map(cluster.jobs.map((j) => [j.job_id, j]));
    // Each instance with its job's memory as sstat measures it on the node (where accounting is on).
    const named = here.map((i) => {
      const memory = jobs.get(i.slurm_job_id)?.memory_bytes;
      return memory ? `${i.name} (${fmt.bytes(memory)})` : i.name;
    });
    const memoryUsed = node.memory_mb !== null && node.memory_free_mb !== null
      ? Math.max(0, node.memory_mb - node.memory_free_mb) * 2 ** 20 : null;
    return h("article", { class: "card node-card", "aria-label": `node ${node.name}`, "data-node": node.name },
      h("span", { class: "status-badge", "data-status": node.state, text: node.state }),
      h("h2", { text: node.name }),
      h("p", { class: "muted small", text: `${node.address} · ${node.partitions.join(", ")}` }),
      h("dl", {},
        h("dt", { text: "GPUs" }), h("dd", { "data-fig": "gpus", text: `${node.gpus_allocated} / ${node.gpus} in use` }),
        h("dt", { text: "CPUs" }),
        h("dd", { text: `${node.cpus_allocated ?? fmt.DASH} / ${node.cpus ?? fmt.DASH} · load ${fmt.number(node.cpu_load, 2)}` }),
        h("dt", { text: "Memory" }),
        h("dd", { text: `${fmt.bytes(memoryUsed)} / ${fmt.bytes(node.memory_mb === null ? null : node.memory_mb * 2 ** 20)}` }),
        h("dt", { text: "Instances" }),
        h("dd", { "data-fig": "instances", text: named.join(", ") || fmt.DASH })),
      node.reason ? h("p", { class: "muted small", text: node.reason }) : null);
  }));
}

/** The add dialog's "Runs on" choice: this machine, or a partition of the cluster (with --slurm). */
export async function fillWhere() {
  const where = $("#add-where");
  const select = $("#add-partition");
  select.onchange = () => { $("#add-slurm").hidden = !select.value; };
  select.onchange();
  where.hidden = !(await fillPartitions(select, ""));
}

/**
 * A "Runs on" select: "This machine", then each partition sinfo lists, with `chosen` selected (kept
 * as an option even when sinfo no longer lists it, so the select shows what is stored). False when
 * AiKore runs without --slurm or the cluster cannot be read: the caller hides the choice.
 */
export async function fillPartitions(select, chosen) {
  let cluster;
  try {
    cluster = await api.cluster();
  } catch {
    return false;
  }
  if (!cluster.enabled) return false;
  const options = cluster.partitions.map((p) => h("option", { value: p.name,
    text: `Slurm partition ${p.name}${p.gpus_per_node ? ` (${p.gpus_per_node} GPUs per node)` : ""}${p.available ? "" : " - down"}` }));
  if (chosen && !cluster.partitions.some((p) => p.name === chosen)) {
    options.push(h("option", { value: chosen, text: `Slurm partition ${chosen} (not listed by sinfo)` }));
  }
  select.replaceChildren(h("option", { value: "", text: "This machine" }), ...options);
  select.value = chosen;
  select.dispatchEvent(new Event("change"));
  return true;
}

/**
 * The Slurm fields of a form (`data.get(name)`), only when a partition is chosen, typed as the API
 * takes them: the add dialog's FormData, or the Settings dialog's fields.
 */
export function whereFields(data) {
  const partition = String(data.get("slurm_partition") ?? "");
  if (!partition) return {};
  const text = (name) => String(data.get(name) ?? "").trim() || null;
  const gpus = text("slurm_gpus");
  return {
    slurm_partition: partition,
    // Sent as typed: a number when it is one, else the text, so the API's message names the problem.
    slurm_gpus: gpus === null ? 0 : /^\d+$/.test(gpus) ? Number(gpus) : gpus,
    slurm_node: text("slurm_node"),
    slurm_time_limit: text("slurm_time_limit"),
    slurm_account: text("slurm_account"),
  };
}
