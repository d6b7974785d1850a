// Preloaded with --require: reports the process's peak RSS on fd 3 when it exits.
const { writeSync } = require('node:fs');
process.on('exit', () => {
  try {
    writeSync(3, `${process.resourceUsage().maxRSS}\n`);
  } catch {}
});
