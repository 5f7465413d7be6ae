/**
 * Preloaded (`node --import`) into every process the bench starts, the server
 * under test included: when the bench's process goes away, even by SIGKILL,
 * its IPC channel closes and this process is sent SIGTERM, so nothing is left
 * running. The channel does not keep the process alive by itself.
 */
if (process.send !== undefined) {
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  process.channel?.unref();
}
