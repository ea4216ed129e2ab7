#!/usr/bin/env node
import "../packages/xdp-load/dist/bin.js"
