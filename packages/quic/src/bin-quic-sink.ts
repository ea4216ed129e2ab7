#!/usr/bin/env node
import { main } from './sink.js'

process.exitCode = await main()
