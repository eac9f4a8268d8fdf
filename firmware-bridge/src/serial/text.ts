import { FrameError } from "../errors.js";

/**
 * The text line protocol (PROTOCOL.md, part 1): one ASCII/UTF-8 line per message, `\n` terminated,
 * `\r` ignored, fields separated by single spaces. Written so `Serial.println()` is all a sketch needs.
 */
export type TextLine =
  | { kind: "hello"; mcu: string; board: string; firmware: string }
  | { kind: "tlm"; metric: string; value: string }
  | { kind: "evt"; name: string; payload: string }
  | { kind: "ack"; cmdId: number; ok: boolean; detail: string }
  | { kind: "log"; text: string }
  | { kind: "comment" };

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Throws `FrameError("bad_line")` for anything that is not one of the lines above. */
export function parseLine(bytes: Uint8Array): TextLine {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  let text: string;
  try {
    text = utf8.decode(bytes.subarray(0, end));
  } catch (err) {
    throw new FrameError("bad_utf8", "line is not valid UTF-8", { cause: err });
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(text)) throw new FrameError("bad_line", "control character in line");
  if (text.startsWith("#")) return { kind: "comment" };
  const sp = text.indexOf(" ");
  const word = sp < 0 ? text : text.slice(0, sp);
  const rest = sp < 0 ? "" : text.slice(sp + 1);
  switch (word) {
    case "hello": {
      const f = rest.split(" ");
      if (f.length !== 3 || f.some((x) => x === "")) {
        throw new FrameError("bad_line", "hello needs: hello <mcu-id> <board> <fw-version>");
      }
      return { kind: "hello", mcu: f[0] as string, board: f[1] as string, firmware: f[2] as string };
    }
    case "tlm": {
      const i = rest.indexOf(" ");
      if (i <= 0 || i === rest.length - 1) throw new FrameError("bad_line", "tlm needs: tlm <metric> <value>");
      return { kind: "tlm", metric: rest.slice(0, i), value: rest.slice(i + 1) };
    }
    case "evt": {
      const i = rest.indexOf(" ");
      const name = i < 0 ? rest : rest.slice(0, i);
      if (name === "") throw new FrameError("bad_line", "evt needs: evt <name> [payload]");
      return { kind: "evt", name, payload: i < 0 ? "" : rest.slice(i + 1) };
    }
    case "ack": {
      const m = /^(\d{1,5}) (ok|err)(?: (.*))?$/.exec(rest);
      if (!m || Number(m[1]) > 0xffff) throw new FrameError("bad_line", "ack needs: ack <cmd-id> ok|err [detail]");
      return { kind: "ack", cmdId: Number(m[1]), ok: m[2] === "ok", detail: m[3] ?? "" };
    }
    case "log":
      return { kind: "log", text: rest };
    default:
      throw new FrameError("bad_line", `unknown line type ${JSON.stringify(word.slice(0, 16))}`);
  }
}

/** Bridge → MCU lines. */
export function commandLine(cmdId: number, name: string, args: string): string {
  return args ? `cmd ${cmdId} ${name} ${args}\n` : `cmd ${cmdId} ${name}\n`;
}

export const WHO_LINE = "who\n";
