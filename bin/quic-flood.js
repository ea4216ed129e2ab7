#!/usr/bin/env node
import "../packages/quic/dist/bin-quic-flood.js"
