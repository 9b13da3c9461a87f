// This source file is part of the Switchboard project.
// Licensed under the Apache License, Version 2.0 (see LICENSE).
// SPDX-License-Identifier: Apache-2.0

import NIOCore
import NIOHTTP1

// Reading a request's body: into memory within the listener's budget, into a temporary
// file past `http.body-file-threshold`, and back from the file once whole.
extension HTTPConnectionHandler {
    /// Adds a part of the body being read: to memory within the budget, to its file past the
    /// threshold.
    func collect(_ part: ByteBuffer, context: ChannelHandlerContext) {
        // Taken out while it changes, so its body buffer is not shared (and copied) on append.
        guard var collecting = request.take() else { return }
        let count = part.readableBytes
        collecting.received += count
        if collecting.received > collecting.binding.maxBodySize {
            request = collecting
            refuse(RequestRouter.tooLarge(collecting.binding, path: collecting.path), head: collecting.head, context: context)
            return
        }
        guard settings.budget.take(count) else {
            request = collecting
            settings.counters.count(.bodyBuffersFull)
            refuse(.error(status: 503, "the listener holds as many request bodies as it may (http.max-buffered-bodies); try again later"),
                   head: collecting.head, context: context)
            return
        }
        collecting.taken += count
        if collecting.body == nil {
            collecting.body = part
        } else {
            var part = part
            collecting.body?.writeBuffer(&part)
        }
        let startsSpilling = !collecting.spilling && collecting.received > settings.bodyFileThreshold
        if startsSpilling { collecting.spilling = true }
        let spilling = collecting.spilling
        request = collecting
        if startsSpilling {
            makeFile(context: context)
        } else if spilling {
            writeToFile(context: context)
        }
    }

    func makeFile(context: ChannelHandlerContext) {
        fileBusy = true
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        BodyFile.make(in: settings.bodyFileDirectory, on: context.eventLoop).whenComplete { result in
            let (handler, context) = bound.value
            handler.fileBusy = false
            switch result {
            case .success(let file):
                guard handler.isOpen, handler.request?.spilling == true, handler.request?.file == nil else {
                    file.close()
                    return
                }
                handler.request?.file = file
                handler.writeToFile(context: context)
            case .failure(let error):
                handler.bodyFileFailed(error, context: context)
            }
        }
    }

    /// Writes what is queued in memory to the body's file, one write at a time; once the body
    /// has ended and all of it is written, reads it back and routes the request.
    func writeToFile(context: ChannelHandlerContext) {
        guard !fileBusy, let file = request?.file, var collecting = request.take() else { return }
        guard let queued = collecting.body, queued.readableBytes > 0 else {
            request = collecting
            if collecting.ended { readBack(file, context: context) } else { resumeReading(context: context) }
            return
        }
        let bytes = collecting.taken
        collecting.body = nil
        collecting.taken = 0
        request = collecting
        fileBusy = true
        let bound = NIOLoopBound((self, context, file), eventLoop: context.eventLoop)
        file.append(queued).whenComplete { [budget = settings.budget] result in
            budget.giveBack(bytes)
            let (handler, context, file) = bound.value
            handler.fileBusy = false
            guard handler.isOpen, handler.request?.file === file else { return }
            switch result {
            case .success: handler.writeToFile(context: context)
            case .failure(let error): handler.bodyFileFailed(error, context: context)
            }
        }
    }

    /// Reads a whole body back from its file (taking its size from the budget) and routes it.
    func readBack(_ file: BodyFile, context: ChannelHandlerContext) {
        guard let head = request?.head else { return }
        guard settings.budget.take(file.size) else {
            settings.counters.count(.bodyBuffersFull)
            abandonRequest()
            state = .idle
            isOpen = false
            write(.error(status: 503, "the listener holds as many request bodies as it may (http.max-buffered-bodies); try again later"),
                  head: head, close: true, context: context)
            return
        }
        request?.taken = file.size
        fileBusy = true
        let bound = NIOLoopBound((self, context, file), eventLoop: context.eventLoop)
        file.readAll(allocator: context.channel.allocator).whenComplete { result in
            let (handler, context, file) = bound.value
            handler.fileBusy = false
            file.close()
            guard handler.isOpen, handler.request?.file === file, var request = handler.request else { return }
            switch result {
            case .success(let body):
                request.body = body
                request.file = nil
                handler.request = nil
                handler.route(request, context: context)
            case .failure(let error):
                handler.bodyFileFailed(error, context: context)
            }
        }
    }

    func bodyFileFailed(_ error: any Error, context: ChannelHandlerContext) {
        settings.logger.error("a request body could not be kept in its temporary file", metadata: [
            "directory": "\(settings.bodyFileDirectory)", "error": "\(error)",
        ])
        let head = requestHead ?? HTTPRequestHead(version: .http1_1, method: .POST, uri: "/")
        abandonRequest()
        state = .idle
        guard isOpen else { return }
        isOpen = false
        write(.error(status: 500, "the request body could not be kept: \(error)"), head: head, close: true, context: context)
    }
}
