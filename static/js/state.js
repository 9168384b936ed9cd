// What the dashboard knows: instances, blueprints and the latest stats sample, with change events.

const bus = new EventTarget();

export const state = {
  instances: new Map(),
  blueprints: [],
  stats: null,
};

/** Subscribe to "instances", "stats" or "blueprints" changes. */
export function on(kind, callback) {
  bus.addEventListener(kind, (event) => callback(event.detail));
}

function emit(kind, detail) {
  bus.dispatchEvent(new CustomEvent(kind, { detail }));
}

export function setInstances(list) {
  state.instances = new Map(list.map((item) => [item.id, item]));
  emit("instances", null);
}

export function upsertInstance(instance) {
  state.instances.set(instance.id, instance);
  emit("instances", instance.id);
}

export function removeInstance(id) {
  state.instances.delete(id);
  emit("instances", id);
}

export function setBlueprints(list) {
  state.blueprints = list;
  emit("blueprints", null);
}

export function setStats(sample) {
  state.stats = sample;
  emit("stats", sample);
}

/** The freshest per-instance usage: the live stats stream, else what the instance JSON carried. */
export function usageOf(instance) {
  const live = state.stats?.instances?.find((usage) => usage.id === instance.id);
  if (live && live.pid === instance.pid) return live;
  return instance.usage ?? null;
}
