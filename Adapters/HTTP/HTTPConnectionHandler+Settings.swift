// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import Foundation
import Logging
import NIOCore
import NIOHTTP1
import SwitchboardCore

extension HTTPConnectionHandler {
    /// What every connection of one listener shares.
    struct Settings: Sendable {
        let router: RequestRouter
        let idleTimeout: TimeAmount?
        let headerTimeout: TimeAmount
        let bodyTimeout: TimeAmount
        /// The timeouts as the config wrote them, for replies.
        let headerTimeoutText: String
        let bodyTimeoutText: String
        let budget: BodyBudget
        let bodyFileThreshold: Int
        let bodyFileDirectory: String
        let maxHeaderCount: Int
        let maxHeaderSize: Int
        let counters: ListenerCounters
        let logger: Logger

        init(router: RequestRouter, configuration: HTTPAdapter.Configuration, budget: BodyBudget, counters: ListenerCounters, logger: Logger) {
            self.router = router
            idleTimeout = configuration.idleTimeout.map { TimeAmount($0) }
            headerTimeout = TimeAmount(configuration.headerTimeout)
            bodyTimeout = TimeAmount(configuration.bodyTimeout)
            headerTimeoutText = formatDuration(configuration.headerTimeout)
            bodyTimeoutText = formatDuration(configuration.bodyTimeout)
            self.budget = budget
            bodyFileThreshold = configuration.bodyFileThreshold
            bodyFileDirectory = configuration.bodyFileDirectory
            maxHeaderCount = configuration.maxHeaderCount
            maxHeaderSize = configuration.maxHeaderSize
            self.counters = counters
            self.logger = logger
        }

        /// NIO's decoder enforces the head limits (its list size counts the target too).
        var decoderLimits: NIOHTTPDecoderLimitConfiguration {
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldCount = maxHeaderCount
            limits.maxHeaderFieldSize = maxHeaderSize
            limits.maxHeaderListSize = maxHeaderSize
            return limits
        }
    }
}
