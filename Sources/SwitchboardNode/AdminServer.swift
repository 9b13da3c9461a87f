import Foundation
import Hummingbird
import Logging
import NIOCore
import SwitchboardCore
import SwitchboardRouting

/// The admin API on its own listener: health now; traces, routes and SLA state as the
/// node grows. With a token configured every endpoint but `/health` needs
/// `Authorization: Bearer TOKEN`.
final class AdminServer: Sendable {
    let listen: NodeConfiguration.Listen
    let token: String?
    let engine: RouteEngine
    let logger: Logger
    let started = ContinuousClock.now
    /// The port bound once the API listens; nil if it failed to bind.
    let boundPort = AsyncValue<Int?>()

    init(listen: NodeConfiguration.Listen, token: String?, engine: RouteEngine, logger: Logger) {
        self.listen = listen
        self.token = token
        self.engine = engine
        self.logger = logger
    }

    func run() async throws {
        let router = Router()
        router.get("/health") { [engine, started] _, _ -> Response in
            let uptime = ContinuousClock.now - started
            let json = "{\"status\":\"ok\",\"routes\":\(engine.routes.count),\"uptimeSeconds\":\(uptime.components.seconds)}"
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: json)))
        }
        if let token {
            router.middlewares.add(BearerTokenMiddleware(token: token, openPaths: ["/health"]))
        }
        var serverLogger = logger
        serverLogger.logLevel = max(logger.logLevel, .notice)
        let application = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(listen.host, port: listen.port), serverName: nil),
            onServerRunning: { [boundPort, logger, listen, token] channel in
                let port = channel.localAddress?.port ?? listen.port
                boundPort.set(port)
                let auth = token == nil ? "no token set: loopback only" : "bearer token required"
                logger.notice("admin API ready", metadata: ["address": "\(listen.host):\(port)", "auth": "\(auth)"])
            },
            logger: serverLogger
        )
        do {
            try await application.run()
        } catch {
            guard boundPort.current == nil else { throw error }
            boundPort.set(nil)
            throw ListenError(listener: "the admin API (admin.listen)", address: "\(listen)", error: error)
        }
    }
}

/// Refuses requests without the configured bearer token (compared in constant time).
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String
    let openPaths: Set<String>

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if openPaths.contains(request.uri.path) {
            return try await next(request, context)
        }
        let presented = request.headers[.authorization] ?? ""
        let expected = "Bearer \(token)"
        guard constantTimeEquals(Array(presented.utf8), Array(expected.utf8)) else {
            return Response(
                status: .unauthorized,
                headers: [.contentType: "application/json", .wwwAuthenticate: "Bearer"],
                body: .init(byteBuffer: ByteBuffer(string: "{\"error\":\"missing or wrong bearer token\",\"status\":401}"))
            )
        }
        return try await next(request, context)
    }

    private func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
