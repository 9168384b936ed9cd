// The launch.sh editor: CodeMirror 5 with shell highlighting, save (the API keeps a .bak), restart.

import { api } from "./api.js";
import { $, busy, h, openDialog, showError } from "./dom.js";
import { on, state, upsertInstance } from "./state.js";

let current = null; // { id, saved, editor, restart: null | "asked" | "down" }

function makeEditor(host, content) {
  host.replaceChildren();
  // CodeMirror is a classic script (window.CodeMirror); without it a plain textarea still works.
  if (window.CodeMirror) {
    const cm = window.CodeMirror(host, {
      value: content,
      mode: "shell",
      lineNumbers: true,
      indentUnit: 2,
      tabSize: 2,
      lineWrapping: false,
      // Tab indents; Escape (closing the dialog) is the keyboard way out, so focus is never stuck.
      // CodeMirror takes Escape for itself; here it closes the dialog, as everywhere else.
      extraKeys: { "Ctrl-S": () => save(), "Cmd-S": () => save(), Esc: () => requestClose() },
      screenReaderLabel: "launch.sh",
    });
    return {
      get: () => cm.getValue(),
      set: (text) => cm.setValue(text),
      onChange: (fn) => cm.on("change", fn),
      focus: () => cm.focus(),
      refresh: () => cm.refresh(),
    };
  }
  const area = h("textarea", { class: "fallback", spellcheck: "false", "aria-label": "launch.sh" });
  area.value = content;
  host.append(area);
  return {
    get: () => area.value,
    set: (text) => { area.value = text; },
    onChange: (fn) => area.addEventListener("input", fn),
    focus: () => area.focus(),
    refresh: () => {},
  };
}

function dirtyText() {
  return current && current.editor.get() !== current.saved ? "Unsaved changes" : "";
}

function updateDirty() {
  $("#editor-dirty").textContent = dirtyText();
}

function confirmDiscard() {
  return !dirtyText() || window.confirm("Discard unsaved changes to launch.sh?");
}

function requestClose() {
  if (confirmDiscard()) $("#editor-dialog").close();
}

function notice(text) {
  const el = $("#editor-notice");
  el.textContent = text;
  el.hidden = !text;
}

export async function openEditor(id) {
  const inst = state.instances.get(id);
  if (!inst) return;
  $("#editor-title").textContent = `Edit script — ${inst.name}`;
  showError($("#editor-error"), "");
  notice("");
  $("#editor-restart").hidden = true;
  $("#editor-dirty").textContent = "";
  const dialog = $("#editor-dialog");
  openDialog(dialog, { onClose: () => { current = null; } });
  const host = $("#editor-host");
  host.replaceChildren(h("p", { class: "muted loading", text: "Loading launch.sh…" }));
  try {
    const script = await api.script(id);
    current = { id, saved: script.content, editor: makeEditor(host, script.content) };
    current.editor.onChange(updateDirty);
    current.editor.refresh();
    current.editor.focus();
  } catch (err) {
    host.replaceChildren();
    showError($("#editor-error"), err.message);
  }
}

async function save() {
  if (!current) return;
  const { id } = current;
  const content = current.editor.get();
  await busy($("#editor-save"), async () => {
    try {
      await api.saveScript(id, content);
      if (!current || current.id !== id) return;
      current.saved = content;
      showError($("#editor-error"), "");
      updateDirty();
      const inst = state.instances.get(id);
      const running = inst && ["running", "starting"].includes(inst.status);
      notice(running
        ? "Saved (previous version kept as launch.sh.bak). The running instance uses the old script until it restarts."
        : "Saved (previous version kept as launch.sh.bak). It takes effect at the next start.");
      $("#editor-restart").hidden = !running;
    } catch (err) {
      showError($("#editor-error"), err.message);
    }
  });
}

async function restart() {
  if (!current) return;
  const { id } = current;
  await busy($("#editor-restart"), async () => {
    try {
      const result = await api.action(id, "restart");
      if (result && result.id === id) upsertInstance(result);
      notice("Restarting with the new script…");
      if (current?.id === id) current.restart = "asked";
      followRestart();
      $("#editor-restart").hidden = true;
    } catch (err) {
      showError($("#editor-error"), err.message);
    }
  });
}

/** "Restarting…" until the instance is back up (or failed): it went down first, then came up. */
function followRestart() {
  const status = current?.restart ? state.instances.get(current.id)?.status : null;
  if (!status) return;
  if (status !== "running") current.restart = "down";
  if (status === "running" && current.restart === "down") {
    current.restart = null;
    notice("Restarted: it runs the new script.");
  } else if (status === "error") {
    current.restart = null;
    notice("");
    showError($("#editor-error"), `The restart did not come up (${status}); its log says why.`);
  }
}

export function setupEditor() {
  on("instances", followRestart);
  $("#editor-save").addEventListener("click", save);
  $("#editor-restart").addEventListener("click", restart);
  // Closing with unsaved changes asks first (Escape included).
  $("#editor-dialog").addEventListener("cancel", (event) => {
    if (!confirmDiscard()) event.preventDefault();
  });
  for (const button of document.querySelectorAll("#editor-dialog [data-close]")) {
    button.addEventListener("click", (event) => {
      if (!confirmDiscard()) event.stopImmediatePropagation();
    }, { capture: true });
  }
}
