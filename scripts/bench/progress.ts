/** One status line while a phase runs: rewritten in place on a TTY, every 5 s otherwise. */
export class Progress {
  private last = 0;
  private shown = false;
  private readonly tty = process.stderr.isTTY === true;

  update(text: string): void {
    if (this.tty) {
      process.stderr.write(`\r\x1b[2K${text}`);
      this.shown = true;
    } else if (Date.now() - this.last >= 5_000) {
      this.last = Date.now();
      process.stderr.write(`${text}\n`);
    }
  }

  /** Ends the status line and prints `text` on its own line. */
  log(text: string): void {
    if (this.shown) process.stderr.write('\r\x1b[2K');
    this.shown = false;
    process.stderr.write(`${text}\n`);
  }
}
