/**
 * Splitting one file into its up and down parts (dbmate, goose) without moving any line: the lines
 * outside a part are blanked, so a statement's line number in the part is its line in the file.
 */

/** The file's lines, without their line endings. */
export function lines(text: string): string[] {
  return text.split('\n');
}

/** `text` with every line whose index is not in [from, to) replaced by an empty line. */
export function keepLines(all: readonly string[], from: number, to: number): string {
  return all.map((l, i) => (i >= from && i < to ? l : '')).join('\n');
}

/** Whether a part holds anything but blank lines and `--` comments (an empty down is no down). */
export function hasSql(text: string): boolean {
  return text.split('\n').some((l) => {
    const t = l.trim();
    return t !== '' && !t.startsWith('--');
  });
}
