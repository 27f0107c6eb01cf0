/** Starts the Express example: `npm start` (PORT, default 3000; REDIS_URL switches to Redis). */
import { createStores } from '../shared/stores.js';
import { createApp } from './app.js';

const port = Number(process.env.PORT ?? 3000);
const stores = await createStores();
const server = createApp(stores).listen(port, () => {
  console.log(
    `restwell example (Express, ${stores.records.kind} store) on http://localhost:${port}`,
  );
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close(() => void stores.close().then(() => process.exit(0)));
  });
}
