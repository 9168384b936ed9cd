// An instance row's compact actions menu: the less used actions behind one "⋯" button, in a
// popover (the top layer, so a table that scrolls never clips it), placed under its button.

import { $, $$ } from "./dom.js";

/** Wire the menu of one row; `key` makes its id unique (the popover's invoker names it). */
export function setupRowMenu(body, key) {
  const toggle = $(".more-toggle", body);
  const menu = $(".more-menu", body);
  menu.id = `row-menu-${key}`;
  toggle.setAttribute("popovertarget", menu.id);
  menu.addEventListener("toggle", (event) => {
    const open = event.newState === "open";
    toggle.setAttribute("aria-expanded", String(open));
    if (open) {
      place(menu, toggle);
      items(menu)[0]?.focus();
    }
  });
  menu.addEventListener("keydown", (event) => moveFocus(menu, toggle, event));
  // Choosing an item closes the menu; the row's own click handler then does the action. Focus goes
  // to the menu's button first, so a dialog the action opens gives it back there, not to nowhere.
  menu.addEventListener("click", (event) => {
    if (!event.target.closest("[data-action]")) return;
    toggle.focus();
    menu.hidePopover();
  });
}

function items(menu) {
  return $$(".menu-item", menu).filter((item) => !item.hidden && !item.disabled);
}

function moveFocus(menu, toggle, event) {
  const list = items(menu);
  const at = list.indexOf(document.activeElement);
  const step = { ArrowDown: 1, ArrowUp: -1 }[event.key];
  if (step) {
    event.preventDefault();
    list[(at + step + list.length) % list.length]?.focus();
  } else if (event.key === "Home" || event.key === "End") {
    event.preventDefault();
    (event.key === "Home" ? list[0] : list.at(-1))?.focus();
  } else if (event.key === "Escape" || event.key === "Tab") {
    if (event.key === "Escape") event.preventDefault();
    menu.hidePopover();
    toggle.focus();
  }
}

/** Under the button, right edges aligned; above it when there is no room below; always on screen. */
function place(menu, toggle) {
  const at = toggle.getBoundingClientRect();
  const width = menu.offsetWidth;
  const height = menu.offsetHeight;
  const left = Math.min(Math.max(8, at.right - width), window.innerWidth - width - 8);
  const below = at.bottom + 4 + height <= window.innerHeight - 8;
  const top = below ? at.bottom + 4 : Math.max(8, at.top - 4 - height);
  menu.style.left = `${Math.max(8, left)}px`;
  menu.style.top = `${top}px`;
}
