#!/usr/bin/env bash
# Runs the uSDHC driver against QEMU 10's SD card model on USDHC3: bare metal
# at EL3 with the MMU off (identity DMA, no cache maintenance), UART1 output.
# Needs qemu-system-aarch64 (>= 10.0, imx8mp-evk), sgdisk (gdisk), python3.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --quiet
elf=target/aarch64-unknown-none/release/usdhc-qemu-smoke
mkdir -p out
run() {
    timeout 120 qemu-system-aarch64 -M imx8mp-evk -display none -serial stdio \
        -serial null -kernel "$elf" -icount shift=0,sleep=off "$@"
}
expect() { grep -qF -- "$1" "$2" || { echo "FAIL: '$1' not in $2"; exit 1; }; }

for card in 32M:65536 4G:8388608; do
    size=${card%%:*} blocks=${card##*:}
    img=out/disk-$size.img
    rm -f "$img"
    python3 disk.py make "$img" "$blocks"
    sgdisk -n 1:2048:+4M -c 1:loader -t 1:EF00 -n 2:0:+8M -c 2:secrets -t 2:8300 "$img" >/dev/null
    cp "$img" out/orig.img
    run -drive if=sd,bus=2,id=sd2,file="$img",format=raw | tee "out/log-$size.txt"
    expect "SMOKE PASS" "out/log-$size.txt"
    expect "gpt source Primary" "out/log-$size.txt"
    expect "part 1 0x800..0x27ff 'loader' type c12a7328-f81f-11d2-ba4b-00a0c93ec93b" "out/log-$size.txt"
    expect "part 2 0x2800..0x67ff 'secrets' type 0fc63daf-8483-4772-8e79-3d69d8477de4" "out/log-$size.txt"
    python3 disk.py check "$img" out/orig.img
done
expect "hc false blocks 0x10000" out/log-32M.txt
expect "hc true blocks 0x800000" out/log-4G.txt

# Corrupt primary GPT header: the backup is used.
cp out/orig.img out/corrupt.img
printf '\xff\xff\xff\xff' | dd of=out/corrupt.img bs=1 seek=$((512 + 20)) conv=notrunc status=none
run -drive if=sd,bus=2,id=sd2,file=out/corrupt.img,format=raw > out/log-corrupt.txt || true
expect "gpt source Backup { primary: HeaderCrc" out/log-corrupt.txt
expect "part 2 0x2800..0x67ff 'secrets'" out/log-corrupt.txt

# Empty slot.
run > out/log-empty.txt
expect "init error: mmc: no card present" out/log-empty.txt
echo "usdhc QEMU smoke: all passed"
