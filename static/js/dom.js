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
 * Open a <dialog> modally: showModal() makes the rest of the page inert and Escape closes it,
 * trapFocus keeps Tab from wandering off to the browser's own UI; focus goes back to the opener.
 */
const FOCUSABLE = "a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), "
  + "textarea:not([disabled]), summary, iframe, [tabindex]:not([tabindex='-1'])";

/** Tab from the last control wraps to the first (Shift+Tab the other way): focus stays inside. */
function trapFocus(event) {
  if (event.key !== "Tab" || event.defaultPrevented) return;
  const dialog = event.currentTarget;
  const controls = $$(FOCUSABLE, dialog).filter((el) => el.getClientRects().length > 0 && !el.closest("[hidden]"));
  if (controls.length === 0) return;
  const first = controls[0];
  const last = controls[controls.length - 1];
  const active = document.activeElement;
  if (event.shiftKey && (active === first || !dialog.contains(active))) {
    event.preventDefault();
    last.focus();
  } else if (!event.shiftKey && (active === last || !dialog.contains(active))) {
    event.preventDefault();
    first.focus();
  }
}

export function openDialog(dialog, { onClose } = {}) {
  const opener = document.activeElement;
  if (!dialog.dataset.trapped) {
    dialog.addEventListener("keydown", trapFocus);
    dialog.dataset.trapped = "yes";
  }
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

let toastTimer = null;

/** Say briefly, at the bottom of the screen, that an action was done (or failed out of view). */
export function toast(message, { error = false } = {}) {
  const el = $("#toast");
  clearTimeout(toastTimer);
  el.textContent = message;
  el.classList.toggle("error", error);
  el.hidden = !message;
  if (message) toastTimer = setTimeout(() => { el.hidden = true; }, error ? 10_000 : 5_000);
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
