// What the server derives from its one declaration of instance fields, read from the page's
// JSON block (aikore.store.instance.dashboard_constants) rather than copied into the scripts.

const config = JSON.parse(document.getElementById("aikore-config").textContent);

/** Fields the API changes while the instance runs; every other one waits until it is stopped. */
export const LIVE_FIELDS = new Set(config.live_fields);

/** Live fields whose change while the instance runs applies at its next start (the others at once). */
export const RESTART_FIELDS = new Set(config.restart_fields);
