// Install progress in the instances table: "installing: <phase>" with how far and how long.
// The phase comes with the instance (its `progress`, reported by the blueprint's script); the
// elapsed time ticks here between events.

const TICK_MS = 1000;

/** The status badge's text: the install phase while installing, else the status itself. */
export function statusText(inst) {
  const progress = inst.progress;
  if (inst.status === "starting" && progress?.installing) return `installing: ${label(progress.phase)}`;
  return inst.status;
}

/** "45% · 2:13" while starting with a phase (the fraction where the script knows it). */
export function progressDetail(inst, now = Date.now() / 1000) {
  const progress = inst.progress;
  if (inst.status !== "starting" || !progress) return "";
  const parts = [];
  if (!progress.installing) parts.push(label(progress.phase));
  if (progress.fraction !== null && progress.fraction !== undefined) parts.push(`${Math.round(progress.fraction * 100)}%`);
  parts.push(elapsed(now - progress.started));
  return parts.join(" · ");
}

export function label(phase) {
  return phase.replaceAll("-", " ");
}

/** 75 -> "1:15", 3725 -> "1:02:05". */
export function elapsed(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

/** Calls `render` every second (the elapsed times move on between events). */
export function tickProgress(render) {
  setInterval(render, TICK_MS);
}
