#!/usr/bin/env node
import "../packages/quic/dist/bin-quic-sink.js"
