#!/usr/bin/env node
import "../packages/ab/dist/bin-ab-feed.js"
