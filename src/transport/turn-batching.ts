// Frames sent in one event-loop turn leave in one system call.
//
// ws writes every frame with its own writev (it corks the socket only around a frame's header and payload).
// A leader answering 64 requests applied by one Ready made 64 writev calls on the same connection, and the
// loopback TCP work of those calls was a third of its CPU under load. Corking the socket until the turn's
// ticks have run (nested ws corks are counted by the socket) sends them all in one writev; nothing waits longer
// than the current turn, so latency is unchanged. `_socket` is ws's own field for the underlying net.Socket.
import type { Socket } from "node:net";
import type { WebSocket } from "ws";

const corked = new WeakSet<Socket>();

/** `ws.send(data)`, coalesced with the turn's other frames on the same socket. */
export function sendInTurn(ws: WebSocket, data: Uint8Array): void {
  const socket = (ws as unknown as { _socket?: Socket })._socket;
  if (socket && !corked.has(socket)) {
    corked.add(socket);
    socket.cork();
    process.nextTick(uncork, socket);
  }
  ws.send(data);
}

function uncork(socket: Socket): void {
  corked.delete(socket);
  socket.uncork();
}
