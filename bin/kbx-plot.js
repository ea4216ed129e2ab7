#!/usr/bin/env node
import "../packages/report/dist/bin-kbx-plot.js"
