// Runs postgres-migrations 5.3 as a whole process, as its users do from a deploy script.
const { Client } = require(process.env.PEERS + '/node_modules/pg');
const { migrate } = require(process.env.PEERS + '/node_modules/postgres-migrations');

(async () => {
  const client = new Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    await migrate({ client }, process.argv[2], { logger: () => {} });
  } finally {
    await client.end();
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
