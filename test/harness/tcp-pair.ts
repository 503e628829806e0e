// Two ends of one loopback TCP connection, both connected (the listener is closed again): the caller destroys them.
import { once } from "node:events";
import * as net from "node:net";

export async function tcpPair(): Promise<[client: net.Socket, server: net.Socket]> {
  const server = net.createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const accepted = once(server, "connection");
  const client = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
  const [srv] = (await accepted) as [net.Socket];
  await once(client, "connect").catch(() => undefined);
  server.close();
  return [client, srv];
}
