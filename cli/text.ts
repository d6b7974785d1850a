/**
 * Plain-text layout shared by the help and the reports.
 */

/** Lines of text output stay readable; --json has every word. */
export const MAX_LINE = 120;

/** Words onto lines of at most MAX_LINE characters, the later ones indented. */
export function wrap(text: string, indent = '  '): string {
  const lines: string[] = [];
  const lead = /^ */.exec(text)![0];
  let line = lead;
  for (const word of text.slice(lead.length).split(' ')) {
    if (line.trim() && line.length + 1 + word.length > MAX_LINE) {
      lines.push(line);
      line = indent + word;
    } else line = line.trim() ? `${line} ${word}` : line + word;
  }
  return [...lines, line].join('\n');
}
