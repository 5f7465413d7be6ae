/**
 * The key per-address limits count a client under: an IPv4 address itself
 * (also written IPv4-mapped, `::ffff:a.b.c.d`), and an IPv6 address's /64
 * network. One host (a home router, a phone, a cloud VM) is handed a whole
 * /64, so counting each of its addresses apart would let one client past
 * every per-address limit by picking a new source address each time.
 */
import ipaddr from 'ipaddr.js';

export function addressGroup(address: string): string {
  if (!address.includes(':')) return address;
  let parsed: ipaddr.IPv6;
  try {
    parsed = ipaddr.IPv6.parse(address);
  } catch {
    return address;
  }
  if (parsed.isIPv4MappedAddress()) return parsed.toIPv4Address().toString();
  return `${parsed.parts
    .slice(0, 4)
    .map((part) => part.toString(16))
    .join(':')}::/64`;
}
