// The embedded desktop of a persistent instance, as a tab of the tools pane.

import { $ } from "./dom.js";
import { state } from "./state.js";
import { findTool, openTool, registerReopener } from "./workspace.js";

/** Open (or select) the desktop tab of a persistent instance; closing the tab unloads it. */
export function openDesktop(id) {
  const inst = state.instances.get(id);
  if (!inst?.desktop_url) return;
  const key = `desktop-${id}`;
  if (findTool(key)) {
    openTool({ key });
    return;
  }
  const root = $("#desktop-panel").content.firstElementChild.cloneNode(true);
  $(".desktop-newtab", root).href = inst.desktop_url;
  const frame = $(".desktop-frame", root);
  frame.title = `${inst.name} — desktop`;
  frame.src = inst.desktop_url;
  openTool({
    key,
    label: () => `Desktop — ${state.instances.get(id)?.name ?? id}`,
    panel: root,
    instanceId: id,
    persist: { kind: "desktop", id },
    focusTab: true,
  });
}

export function setupDesktop() {
  registerReopener("desktop", (saved) => openDesktop(saved.id));
}
