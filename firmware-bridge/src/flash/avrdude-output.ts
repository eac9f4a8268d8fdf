import type { FlashErrorCode, FlashPhase, FlashProgress } from "./flasher.js";

const KEEP_LINES = 40;

/**
 * Reads avrdude's stderr as it comes. With stderr on a pipe avrdude 7.1 draws each progress bar as
 * `Writing | ` followed by one `#` per 2 %, without line breaks until the bar ends; the lines before
 * a bar say what it is about ("writing 364 bytes flash ...", "verifying flash memory against ...").
 * Only the last lines are kept, for the error message.
 */
export class AvrdudeOutput {
  /** Bytes avrdude reported as written ("N bytes of flash written"). */
  written = 0;
  private total: number;
  private next: FlashPhase = "preparing";
  private bar: FlashPhase | undefined;
  private lastPercent = -1;
  private partial = "";
  private readonly lines: string[] = [];

  constructor(imageBytes: number, private readonly onProgress: (p: FlashProgress) => void) {
    this.total = imageBytes;
  }

  push(chunk: string): void {
    let text = this.partial + chunk;
    for (;;) {
      const i = text.search(/[\r\n]/);
      if (i < 0) break;
      this.line(text.slice(0, i), true);
      text = text.slice(i + 1);
    }
    this.partial = text;
    if (text !== "") this.line(text, false);
  }

  /** The last non-empty lines, for an error message. */
  tail(n = 6): string[] {
    return this.lines.slice(-n);
  }

  allLines(): string[] {
    const rest = this.partial.trim();
    return rest ? [...this.lines, rest] : [...this.lines];
  }

  private line(text: string, complete: boolean): void {
    const bar = /^(Writing|Reading) \|( #*)/.exec(text);
    if (bar) {
      this.progress((bar[2] ?? "").trim().length * 2);
      if (complete) this.keep(text);
      return;
    }
    if (!complete) return;
    this.keep(text);
    let m = /writing (\d+) bytes flash/.exec(text);
    if (m) {
      this.total = Number(m[1]);
      this.next = "flashing";
    } else if (/verifying flash memory/.test(text)) {
      this.next = "verifying";
    } else if ((m = /(\d+) bytes of flash written/.exec(text))) {
      this.written = Number(m[1]);
    }
  }

  private progress(percent: number): void {
    if (this.bar !== this.next) {
      this.bar = this.next;
      this.lastPercent = -1;
    }
    if (percent === this.lastPercent) return;
    this.lastPercent = percent;
    const phase = this.bar;
    // The first bar reads the signature: nothing of the image yet.
    const bytes = phase === "preparing" ? 0 : Math.round((this.total * Math.min(percent, 100)) / 100);
    this.onProgress({ phase, bytes, total: this.total, detail: `avrdude ${phase} ${percent}%` });
  }

  private keep(text: string): void {
    const t = text.trim();
    if (t === "" || /^(Writing|Reading) \|/.test(t) && !t.includes("%")) return;
    this.lines.push(t);
    if (this.lines.length > KEEP_LINES) this.lines.shift();
  }
}

/**
 * avrdude exits 1 for every failure, so the kind of failure can only be read from its messages (7.1's
 * wording; older versions say much the same). Order matters: a verify error also ends in "done".
 */
export function classifyAvrdudeFailure(lines: readonly string[]): { code: FlashErrorCode; reason: string } {
  const text = lines.join("\n");
  const rules: Array<[RegExp, FlashErrorCode, string]> = [
    [/verification (error|mismatch)|content mismatch/i, "verify_failed", "the flash read back differs from the image"],
    [/invalid file format|can'?t open input file|cannot open input file|invalid record|checksum|program size \d+ exceeds|out of range/i, "bad_image", "avrdude rejected the image"],
    [/cannot open (port|device)|can'?t open device|unable to open programmer/i, "no_response", "the serial port could not be opened"],
    [/expected signature|invalid device signature/i, "tool_failed", "the chip is not the part asked for"],
    [/not in sync|not responding|stk500_getsync|initialization failed|protocol expects/i, "no_response", "the bootloader did not answer (not in the bootloader, wrong baud or no auto-reset)"],
  ];
  for (const [re, code, reason] of rules) if (re.test(text)) return { code, reason };
  return { code: "tool_failed", reason: "avrdude failed" };
}
