// Number formatting shared by the views: bytes, percents, durations; "–" for unknown (null).

export const DASH = "–";

export function bytes(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return DASH;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = value;
  let unit = 0;
  while (Math.abs(n) >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  return `${n.toFixed(unit === 0 ? 0 : digits)} ${units[unit]}`;
}

export function percent(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return DASH;
  return `${value.toFixed(digits)}%`;
}

export function number(value, digits = 0, suffix = "") {
  if (value === null || value === undefined || Number.isNaN(value)) return DASH;
  return `${value.toFixed(digits)}${suffix}`;
}

export function seconds(value) {
  if (value === null || value === undefined) return DASH;
  return value < 1 ? `${Math.round(value * 1000)} ms` : `${Number(value.toFixed(2))} s`;
}
