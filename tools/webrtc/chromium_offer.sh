#!/usr/bin/env bash
# Captures the SDP offers headless Chromium makes for a WHEP listener, a per-speaker WHEP
# listener and a WHIP speaker (tools/webrtc/chromium_offer.html) into
# Fixtures/webrtc/chromium-{whep,whep-speakers,whip}-offer.sdp.
# Needs the Debian `chromium` package.
set -euo pipefail
cd "$(dirname "$0")/../.."
dom=$(chromium --headless=new --no-sandbox --disable-gpu --virtual-time-budget=5000 \
  --dump-dom "file://$PWD/tools/webrtc/chromium_offer.html" 2>/dev/null)
python3 - "$dom" <<'PY'
import html, re, sys
dom = sys.argv[1]
for name in ("whep", "whep-speakers", "whip"):
    match = re.search(r'<pre id="%s">(.*?)</pre>' % name, dom, re.S)
    if not match or not match.group(1).startswith("v=0"):
        sys.exit("chromium_offer: no %s offer in the page" % name)
    sdp = html.unescape(match.group(1)).replace("\r\n", "\n").replace("\n", "\r\n")
    with open("Fixtures/webrtc/chromium-%s-offer.sdp" % name, "w", newline="") as out:
        out.write(sdp)
PY
echo "chromium_offer: wrote Fixtures/webrtc/chromium-whep-offer.sdp, chromium-whep-speakers-offer.sdp and chromium-whip-offer.sdp"
