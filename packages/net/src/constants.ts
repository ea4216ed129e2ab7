export const EtherType = {
  IPv4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  QinQ: 0x88a8,
  IPv6: 0x86dd,
} as const

export const IpProtocol = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ICMPv6: 58,
} as const

export const TcpFlags = {
  FIN: 1,
  SYN: 2,
  RST: 4,
  PSH: 8,
  ACK: 16,
  URG: 32,
  ECE: 64,
  CWR: 128,
} as const
export type TcpFlags = (typeof TcpFlags)[keyof typeof TcpFlags]

export const ETH_HEADER_LENGTH = 14
export const VLAN_TAG_LENGTH = 4
export const IPV4_HEADER_LENGTH = 20
export const IPV6_HEADER_LENGTH = 40
export const UDP_HEADER_LENGTH = 8
export const TCP_HEADER_LENGTH = 20
export const ARP_LENGTH = 28
