// `npm run stop`: stops the embedded PostgreSQL that `npm start` left running under .orion/.
import { resolve } from 'node:path';
import { stopLocalServer } from '../lambda/local/local-server';

stopLocalServer(resolve('.orion')).then(
  (stopped) => console.error(stopped ? 'stopped the local PostgreSQL' : 'the local PostgreSQL is not running'),
  (err) => {
    console.error(`could not stop the local PostgreSQL: ${err.message}`);
    process.exitCode = 1;
  },
);
