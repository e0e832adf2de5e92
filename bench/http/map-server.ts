/**
 * The physical limit: one Node HTTP server (node:http, no framework) answering raft-kv's paths
 * from a Map, nothing replicated, nothing on disk. Run as a child process by the suite:
 *   node map-server.js <port>
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const data = new Map<string, Buffer>();
const server = createServer((req, res) => {
  const key =
    (req.url ?? '')
      .split('?')[0]
      ?.replace(/^\/v1\/kv\//, '')
      .replace(/\/cas$/, '') ?? '';
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'GET') {
      const v = data.get(key);
      res.statusCode = v === undefined ? 404 : 200;
      res.end(v ?? '{"error":"not_found"}');
      return;
    }
    data.set(key, Buffer.concat(chunks));
    res.setHeader('content-type', 'application/json');
    res.end('{"revision":1}');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
