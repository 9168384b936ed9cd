// Small DOM helpers: element lookup, text filling, dialogs that trap focus and close on Escape.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** Create an element with attributes and children (strings become text nodes, never HTML). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) el.append(child);
  }
  return el;
}

/** Show a message next to what caused it; an empty message hides it. */
export function showError(el, message) {
  if (!el) return;
  el.textContent = message || "";
  el.hidden = !message;
}

/**
 * Open a <dialog> modally. showModal() makes the rest of the page inert (so Tab stays inside)
 * and Escape closes it; focus goes back to whatever opened it.
 */
export function openDialog(dialog, { onClose } = {}) {
  const opener = document.activeElement;
  if (!dialog.open) dialog.showModal();
  const close = () => {
    dialog.removeEventListener("close", close);
    onClose?.();
    if (opener && document.contains(opener)) opener.focus();
  };
  dialog.addEventListener("close", close);
  for (const button of $$("[data-close]", dialog)) {
    button.onclick = () => dialog.close();
  }
}

/** Ask a yes/no question in the confirmation dialog; resolves to true when confirmed. */
export function confirmAction({ title, text, confirm = "Confirm" }) {
  const dialog = $("#confirm-dialog");
  $("#confirm-title").textContent = title;
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = confirm;
  dialog.returnValue = "cancel";
  return new Promise((resolve) => {
    openDialog(dialog, { onClose: () => resolve(dialog.returnValue === "ok") });
  });
}

/**
 * Mark a control busy while an async action runs, so a double click does not send twice. It is
 * not disabled (a live update may re-render it meanwhile); aria-busy blocks clicks through CSS.
 */
export async function busy(control, work) {
  if (control.getAttribute("aria-busy") === "true") return undefined;
  control.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    control.removeAttribute("aria-busy");
  }
}
