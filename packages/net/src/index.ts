export {
  formatIPv4,
  formatIPv6,
  formatMac,
  isIPv4,
  parseIPv4,
  parseIPv6,
  parseMac,
  readIPv4,
  writeIPv4,
  writeMacTo,
} from './address.js'
export { checksumPartial, foldChecksum, internetChecksum, ipv4PseudoHeaderSum, ipv6PseudoHeaderSum } from './checksum.js'
export {
  ARP_LENGTH,
  ETH_HEADER_LENGTH,
  EtherType,
  IPV4_HEADER_LENGTH,
  IPV6_HEADER_LENGTH,
  IpProtocol,
  TCP_HEADER_LENGTH,
  TcpFlags,
  UDP_HEADER_LENGTH,
  VLAN_TAG_LENGTH,
} from './constants.js'
export {
  UdpFrameTemplate,
  buildArpFrame,
  buildTcpFrame,
  buildUdp6Frame,
  buildUdpFrame,
  ethernetHeaderLength,
  tcpFrameLength,
  udpFrameLength,
  udpFrameTemplate,
  writeEthernetHeader,
  writeIPv4Header,
  writeTcpFrame,
  writeUdpFrame,
} from './build.js'
export type { ArpSpec, FrameSpec, Ipv4Spec, TcpSpec, Udp6Spec, UdpSpec } from './build.js'
export { parseFrame } from './parse.js'
export type {
  EthernetHeader,
  ParsedArp,
  ParsedFrame,
  ParsedFrameError,
  ParsedFrameOk,
  ParsedIPv4,
  ParsedIPv6,
  ParsedTcp,
  ParsedUdp,
  VlanTag,
} from './parse.js'
export { LINKTYPE_ETHERNET, LINKTYPE_IPV4, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, PcapWriter, parsePcap, readPcap } from './pcap.js'
export type { PcapFile, PcapPacket, PcapWriterOptions } from './pcap.js'
export { interfaceInfo, multicastMac, resolveNextHop } from './netif.js'
export type { InterfaceInfo, NetOptions, NextHop, ResolveNextHopOptions } from './netif.js'
export { parseCapture, parsePcapng, readCapture } from './pcapng.js'
export type { CaptureFile, CapturePacket } from './pcapng.js'
export { buildPcapng, pcapngBlock } from './pcapng-build.js'
export type { PcapngInterfaceSpec, PcapngPacketSpec, PcapngSpec } from './pcapng-build.js'
