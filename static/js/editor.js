// Script editor tabs of the tools pane, one per instance: its launch.sh in CodeMirror 5 with shell
// highlighting, save (the API keeps a .bak), and a restart offered when it runs.

import { api } from "./api.js";
import { $, busy, h, showError } from "./dom.js";
import { on, state, upsertInstance } from "./state.js";
import { openTool, registerReopener } from "./workspace.js";

const editors = new Map(); // instance id -> ScriptEditor

function makeEditor(host, content, save) {
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
      // Tab indents, so Escape hands focus back to the tab strip: the keyboard is never stuck.
      extraKeys: { "Ctrl-S": save, "Cmd-S": save, Esc: () => host.closest("[role='tabpanel']")?.focus() },
      screenReaderLabel: "launch.sh",
    });
    return {
      get: () => cm.getValue(),
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
    onChange: (fn) => area.addEventListener("input", fn),
    focus: () => area.focus(),
    refresh: () => {},
  };
}

class ScriptEditor {
  constructor(id, root) {
    this.id = id;
    this.root = root;
    this.saved = null;
    this.editor = null;
    this.restarting = null; // null | "asked" | "down"
  }

  el(name) {
    return $(`.editor-${name}`, this.root);
  }

  get dirty() {
    return this.editor !== null && this.editor.get() !== this.saved;
  }

  updateDirty() {
    this.el("dirty").textContent = this.dirty ? "Unsaved changes" : "";
  }

  notice(text) {
    const el = this.el("notice");
    el.textContent = text;
    el.hidden = !text;
  }

  async load(focus) {
    const host = this.el("host");
    host.replaceChildren(h("p", { class: "muted loading", text: "Loading launch.sh…" }));
    try {
      const script = await api.script(this.id);
      this.saved = script.content;
      this.editor = makeEditor(host, script.content, () => this.save());
      this.editor.onChange(() => this.updateDirty());
      this.editor.refresh();
      if (focus) this.editor.focus();
    } catch (err) {
      host.replaceChildren();
      showError(this.el("error"), err.message);
    }
  }

  async save() {
    if (!this.editor) return;
    const content = this.editor.get();
    await busy(this.el("save"), async () => {
      try {
        await api.saveScript(this.id, content);
        this.saved = content;
        showError(this.el("error"), "");
        this.updateDirty();
        const inst = state.instances.get(this.id);
        const running = inst && ["running", "starting"].includes(inst.status);
        this.notice(running
          ? "Saved (previous version kept as launch.sh.bak). The running instance uses the old script until it restarts."
          : "Saved (previous version kept as launch.sh.bak). It takes effect at the next start.");
        this.el("restart").hidden = !running;
      } catch (err) {
        showError(this.el("error"), err.message);
      }
    });
  }

  async restart() {
    await busy(this.el("restart"), async () => {
      try {
        const result = await api.action(this.id, "restart");
        if (result && result.id === this.id) upsertInstance(result);
        this.notice("Restarting with the new script…");
        this.restarting = "asked";
        this.followRestart();
        this.el("restart").hidden = true;
      } catch (err) {
        showError(this.el("error"), err.message);
      }
    });
  }

  /** "Restarting…" until the instance is back up (or failed): it went down first, then came up. */
  followRestart() {
    const status = this.restarting ? state.instances.get(this.id)?.status : null;
    if (!status) return;
    if (status !== "running") this.restarting = "down";
    if (status === "running" && this.restarting === "down") {
      this.restarting = null;
      this.notice("Restarted: it runs the new script.");
    } else if (status === "error") {
      this.restarting = null;
      this.notice("");
      showError(this.el("error"), `The restart did not come up (${status}); its log says why.`);
    }
  }
}

/** Open (or select) the script editor tab of an instance. */
export function openEditor(id, { focus = true } = {}) {
  if (!state.instances.has(id)) return;
  if (editors.has(id)) {
    openTool({ key: `editor-${id}` });
    return;
  }
  const editor = new ScriptEditor(id, $("#editor-panel").content.firstElementChild.cloneNode(true));
  editors.set(id, editor);
  editor.el("save").addEventListener("click", () => editor.save());
  editor.el("restart").addEventListener("click", () => editor.restart());
  openTool({
    key: `editor-${id}`,
    label: () => `Script — ${state.instances.get(id)?.name ?? id}`,
    panel: editor.root,
    instanceId: id,
    persist: { kind: "editor", id },
    // Unsaved changes are never dropped silently: closing the tab asks first.
    canClose: () => !editor.dirty || window.confirm("Discard unsaved changes to launch.sh?"),
    onVisible: (shown) => { if (shown) requestAnimationFrame(() => editor.editor?.refresh()); },
    onClose: () => editors.delete(id),
  });
  editor.root.tabIndex = -1;
  editor.load(focus);
}

export function setupEditor() {
  registerReopener("editor", (saved) => openEditor(saved.id, { focus: false }));
  on("instances", () => {
    for (const editor of editors.values()) editor.followRestart();
  });
}
