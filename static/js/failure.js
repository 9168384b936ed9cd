// Why an instance is in error, said once: the supervisor's reason, and when that is only "exited
// with code N", the cause from the last meaningful lines this run wrote.

// The logwriter's frames ("===== <time> start of … =====") and install-phase markers say nothing.
const NOISE = /^=====.*=====$|^::aikore-phase\b/;
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;
// A reason that only says the process ended: the cause has to come from its output.
const BARE_EXIT = /^(?:[\w-]+ )?exited(?: with code -?\d+)?(?: while AiKore was not running)?$/i;
const RUN_START = /^=====.* start of .*=====$/;

/** The meaningful lines among `lines`: no colours, blanks, frames or phase markers. */
export function meaningful(lines) {
  return lines.map((line) => line.replace(ANSI, "").trimEnd()).filter((line) => line.trim() && !NOISE.test(line.trim()));
}

/** The lines of the latest run in a log tail: those after its start banner. */
export function thisRun(lines) {
  let start = 0;
  lines.forEach((line, index) => {
    if (RUN_START.test(line.replace(ANSI, "").trim())) start = index + 1;
  });
  return meaningful(lines.slice(start));
}

/**
 * { headline, cause, notes, lines } for an instance in error: the headline names the exit code
 * once; `cause` is the last meaningful line when the reason is a bare exit; `notes` are the
 * supervisor's additions (a restart planned); `lines` the run's last lines it sent along.
 */
export function failureOf(inst) {
  const [first = "", ...rest] = (inst.status_message || "").split("\n");
  const [reason, ...notes] = first.split("; ");
  const lines = rest[0]?.startsWith("last log lines") ? meaningful(rest.slice(1)) : [];
  const code = inst.exit_code ?? null;
  let headline;
  let cause = "";
  if (!reason || BARE_EXIT.test(reason.trim())) {
    headline = code === null ? "Exited" : `Exited with code ${code}`;
    cause = lines.at(-1) ?? "";
  } else {
    headline = reason;
    if (code !== null && !new RegExp(`\\bcode ${code}\\b`).test(reason)) headline += ` (exit code ${code})`;
  }
  return { headline, cause: cause.trim().slice(0, 300), notes: notes.join("; "), lines };
}

/** The failure in one line, for the instance's row. */
export function failureLine(inst) {
  const { headline, cause, notes } = failureOf(inst);
  return `${headline}${cause ? `: ${cause}` : ""}${notes ? ` — ${notes}` : ""}`;
}
