// Usage: node reflect.js HOST:PORT CA_FILE   (REDFLAG_ADMIN_PASSWORD in the environment)
// Lists the gateway's services through reflection, builds an OperatorService client from
// the reflected descriptors alone, logs in and lists agents. Prints one JSON line.
'use strict';
const fs = require('fs');
const grpc = require('@grpc/grpc-js');
const { GrpcReflection } = require('grpc-js-reflection-client');

const [addr, caFile] = process.argv.slice(2);
const call = (client, method, req, md) =>
  new Promise((resolve) => {
    client[method](req, md || new grpc.Metadata(), (err, resp) => resolve({ err, resp }));
  });

(async () => {
  const creds = grpc.credentials.createSsl(fs.readFileSync(caFile));
  const reflection = new GrpcReflection(addr, creds);
  const services = await reflection.listServices();
  const methods = (await reflection.listMethods('redflag.v1.OperatorService')).map((m) => m.name);
  const descriptor = await reflection.getDescriptorBySymbol('redflag.v1.OperatorService');
  const pkg = descriptor.getPackageObject({ keepCase: true, longs: String, enums: String, defaults: true });
  const client = new pkg.redflag.v1.OperatorService(addr, creds);

  const anonymous = await call(client, 'ListAgents', {});
  const login = await call(client, 'Login', { username: 'admin', password: process.env.REDFLAG_ADMIN_PASSWORD });
  if (login.err) throw login.err;
  const md = new grpc.Metadata();
  md.add('authorization', `Bearer ${login.resp.access_token}`);
  const agents = await call(client, 'ListAgents', {}, md);
  if (agents.err) throw agents.err;
  // One "key value" line each, so the C++ test reads it without a JSON library.
  const lines = [
    ...services.map((s) => `service ${s}`),
    ...methods.map((m) => `method ${m}`),
    `anonymous_code ${anonymous.err ? anonymous.err.code : 0}`,
    `agent_count ${agents.resp.agents.length}`,
  ];
  console.log(lines.join('\n'));
  client.close();
  process.exit(0);
})().catch((e) => {
  console.error(String(e && e.stack || e));
  process.exit(1);
});
