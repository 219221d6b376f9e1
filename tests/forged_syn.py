"""Run on a sandbox server (python3, root): what a neighbour on the same network segment can do
that a router would never forward - send a TCP SYN for DEST_IP:PORT straight to another server's
MAC address, whatever DEST_IP is (127.0.0.1 included), and watch the wire for its SYN-ACK.

    python3 - TARGET_MAC DEST_IP PORT OWN_IP < forged_syn.py     prints "answered" or "silent"

Raw sockets (AF_PACKET) see the answer before this server's own IP stack, which drops a reply
from 127.0.0.1 as a martian.
"""

import random
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def main() -> None:
    target_mac, dest_ip, port, src_ip = bytes.fromhex(sys.argv[1].replace(":", "")), sys.argv[2], int(sys.argv[3]), sys.argv[4]
    iface = next(name for _, name in socket.if_nameindex() if name != "lo")
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.bind((iface, 0))
    own_mac = s.getsockname()[4]
    src, dst = socket.inet_aton(src_ip), socket.inet_aton(dest_ip)
    sport, seq = random.randint(20000, 60000), random.randint(0, 2**32 - 1)
    tcp = struct.pack("!HHIIBBHHH", sport, port, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    tcp = tcp[:16] + struct.pack("!H", checksum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.randint(0, 65535), 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    frame = target_mac + own_mac + b"\x08\x00" + ip + tcp
    s.settimeout(0.2)
    start = time.time()
    sends = [start, start + 0.5, start + 1.0]  # three tries: the first may meet an ARP exchange
    while time.time() < start + 3:
        while sends and time.time() >= sends[0]:
            s.send(frame)
            sends.pop(0)
        try:
            got = s.recv(2048)
        except TimeoutError:
            continue
        if got[12:14] != b"\x08\x00" or got[23] != 6:
            continue
        ihl = (got[14] & 0x0F) * 4
        th = got[14 + ihl:]
        g_sport, g_dport = struct.unpack("!HH", th[:4])
        if g_sport == port and g_dport == sport and th[13] & 0x12 == 0x12:
            print("answered")
            return
    print("silent")


main()
