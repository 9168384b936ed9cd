// Which instances the table shows and in what order: a filter over name, blueprint and status,
// and natural sorting ("x2" before "x10"), remembered in the browser.

const KEY = "aikore.instances.sort";
// Natural order: digit runs compare as numbers; case and accents do not matter.
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
// Instances that need a look first: failing, then busy, then running, then stopped.
const STATUS_ORDER = ["error", "starting", "stopping", "running", "stopped"];

export const listing = {
  filter: "",
  sort: localStorage.getItem(KEY) || "name",
};

export function setSort(value) {
  listing.sort = value;
  localStorage.setItem(KEY, value);
}

/** Does `inst` match the filter? Every word must appear in its name, blueprint or status. */
export function matches(inst, blueprintName) {
  const words = listing.filter.toLowerCase().split(/\s+/).filter(Boolean);
  const text = `${inst.name} ${blueprintName} ${inst.status} gpu:${inst.gpu_ids || "none"}`.toLowerCase();
  return words.every((word) => text.includes(word));
}

/** The instances in the chosen order (by name within equal statuses or blueprints). */
export function ordered(instances, blueprintName) {
  const byName = (a, b) => collator.compare(a.name, b.name);
  const by = {
    name: byName,
    status: (a, b) => STATUS_ORDER.indexOf(a.status) - STATUS_ORDER.indexOf(b.status) || byName(a, b),
    blueprint: (a, b) => collator.compare(blueprintName(a.blueprint), blueprintName(b.blueprint)) || byName(a, b),
  }[listing.sort] ?? byName;
  return [...instances].sort(by);
}
