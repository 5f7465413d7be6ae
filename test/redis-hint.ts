/**
 * Run once by `npm test` before the suites: where redis-server is missing it
 * says so in one line, with how to install it, so the Redis suites can skip
 * (or, with ROOMCAST_REQUIRE_REDIS=1, fail) with a short reason each.
 * To see such a run where redis-server is installed, hide it in a mount namespace:
 * unshare -rm sh -c 'mount --bind /dev/null /usr/bin/redis-server && npm test'
 */
import { redisInstallHint } from './helpers/redis.js';

if (redisInstallHint !== undefined) process.stderr.write(`${redisInstallHint}\n`);
