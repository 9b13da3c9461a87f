// swift-tools-version:6.1
import PackageDescription

/// One set of settings for every target: Swift 6 language mode (strict concurrency) plus
/// explicit `any` for existentials.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "switchboard",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "switchboard", targets: ["switchboard"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/attaswift/BigInt.git", from: "6.0.1"),
    ],
    targets: [
        // System libraries, wrapped once each in SwitchboardTransform.
        .systemLibrary(
            name: "CLibXML2",
            pkgConfig: "libxml-2.0",
            providers: [.apt(["libxml2-dev"])]
        ),

        // OpenSSL's libcrypto, for SHA-256 with the CPU's SHA instructions.
        .systemLibrary(
            name: "CCrypto",
            path: "Sources/CCrypto",
            providers: [.apt(["libssl-dev"])]
        ),

        // Message model, plugin protocols, endpoint specs, diagnostics.
        .target(
            name: "SwitchboardCore",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // SHA-256 on libcrypto, for body hashes, file checksums and host key fingerprints.
        .target(
            name: "SwitchboardDigest",
            dependencies: ["CCrypto", "SwitchboardCore"],
            swiftSettings: swiftSettings
        ),
        // XML (libxml2) and JSON: safe parsing, XPath, JSONPath.
        .target(
            name: "SwitchboardTransform",
            dependencies: ["SwitchboardCore", "CLibXML2", .product(name: "BigInt", package: "BigInt")],
            swiftSettings: swiftSettings
        ),
        // YAML as the node reads it from files: composed, with alias expansion bounded.
        .target(
            name: "SwitchboardYAML",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // Route files, compiler, engine, steps, predicates, templates.
        .target(
            name: "SwitchboardRouting",
            dependencies: [
                "SwitchboardFixedWidth",
                "SwitchboardCore",
                "SwitchboardTransform",
                "SwitchboardYAML",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        // Audit trail: durable exchange events (SQLite or PostgreSQL) and trace queries.
        .target(
            name: "SwitchboardAudit",
            dependencies: [
                "SwitchboardDigest",
                "SwitchboardCore",
                "SwitchboardStorage",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // Database files and connections (SQLite pools, postgres:// URLs and clients) shared by
        // the audit store, the state store and SQL datasources.
        .target(
            name: "SwitchboardStorage",
            dependencies: [
                "SwitchboardCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Durable node state: dead letters, idempotency keys, the asynchronous intake.
        .target(
            name: "SwitchboardState",
            dependencies: [
                "SwitchboardRouting",
                "SwitchboardCore",
                "SwitchboardStorage",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // Service registry: services, instances, health checks, balancing, circuit breakers.
        .target(
            name: "SwitchboardRegistry",
            dependencies: [
                "SwitchboardRouting",
                "SwitchboardCore",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // SLA monitor: sliding windows per route, breach and recovery, route metrics.
        .target(
            name: "SwitchboardSLA",
            dependencies: [
                "SwitchboardRouting",
                "SwitchboardCore",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // Format modules: parsing and writing a data format, used by steps, commands and adapters.
        .target(
            name: "SwitchboardFixedWidth",
            dependencies: [
                "SwitchboardCore",
                "SwitchboardTransform",
                "SwitchboardYAML",
                .product(name: "Yams", package: "Yams"),
            ],
            path: "Sources/SwitchboardFixedWidth",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),
        // Adapter kits: machinery several adapters share.
        .target(
            name: "SwitchboardDropFolder",
            dependencies: [
                "SwitchboardDigest",
                "SwitchboardCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Adapters: one target per folder under Adapters/.
        .systemLibrary(
            name: "CCurl",
            path: "Sources/CCurl"
        ),
        .target(
            name: "SwitchboardFTP",
            dependencies: [
                "SwitchboardCore",
                "SwitchboardDropFolder",
                "CCurl",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Adapters/FTP",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(
            name: "CLibSSH2",
            path: "Sources/CLibSSH2"
        ),
        .target(
            name: "SwitchboardSFTP",
            dependencies: [
                "SwitchboardDigest",
                "SwitchboardCore",
                "SwitchboardDropFolder",
                "CLibSSH2",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Adapters/SFTP",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwitchboardFile",
            dependencies: [
                "SwitchboardCore",
                "SwitchboardDropFolder",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Adapters/File",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "SwitchboardDatabase",
            dependencies: [
                "SwitchboardCore",
                "SwitchboardTransform",
                "SwitchboardStorage",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Adapters/Database",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwitchboardHTTP",
            dependencies: [
                "SwitchboardCore",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            path: "Adapters/HTTP",
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),

        // Composition root: node config, adapter catalog, admin API, lifecycle.
        .target(
            name: "SwitchboardNode",
            dependencies: [
                "SwitchboardCore",
                "SwitchboardRouting",
                "SwitchboardAudit",
                "SwitchboardSLA",
                "SwitchboardState",
                "SwitchboardStorage",
                "SwitchboardTransform",
                "SwitchboardHTTP",
                "SwitchboardFile",
                "SwitchboardSFTP",
                "SwitchboardFTP",
                "SwitchboardDatabase",
                "SwitchboardRegistry",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "switchboard",
            dependencies: [
                "SwitchboardNode",
                "SwitchboardState",
                "SwitchboardStorage",
                "SwitchboardAudit",
                "SwitchboardRouting",
                "SwitchboardTransform",
                "SwitchboardFixedWidth",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings,
            // jemalloc (Debian's libjemalloc) in place of glibc's malloc for the whole
            // process: libxml2, libxslt, SQLite and the Swift runtime allocate on every
            // message, and glibc's allocator spent a fifth of the CPU of an XSLT route.
            linkerSettings: [.linkedLibrary("jemalloc")]
        ),

        .testTarget(
            name: "SwitchboardCoreTests",
            dependencies: ["SwitchboardDigest", "SwitchboardCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardTransformTests",
            dependencies: ["SwitchboardTransform", "SwitchboardTestServers"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardRoutingTests",
            dependencies: ["SwitchboardRouting", "SwitchboardState", "SwitchboardTestServers"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardDatabaseTests",
            dependencies: ["SwitchboardDatabase", "SwitchboardRouting", "SwitchboardCore", "SwitchboardTestServers", .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardRegistryTests",
            dependencies: [
                "SwitchboardRegistry", "SwitchboardCore", "SwitchboardHTTP", "SwitchboardRouting", "SwitchboardTestServers",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardStateTests",
            dependencies: ["SwitchboardState", "SwitchboardTestServers", "SwitchboardCore", "SwitchboardRouting", .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardAuditTests",
            dependencies: ["SwitchboardDigest", 
                "SwitchboardAudit",
                "SwitchboardHTTP",
                "SwitchboardRouting",
                "SwitchboardTestServers",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardSLATests",
            dependencies: [
                "SwitchboardSLA",
                "SwitchboardRouting",
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardHTTPTests",
            dependencies: [
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                "SwitchboardHTTP",
                "SwitchboardRouting",
                "SwitchboardTransform",
                "SwitchboardTestServers",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardFixedWidthTests",
            dependencies: ["SwitchboardFixedWidth", "SwitchboardTransform", "SwitchboardTestServers"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "SwitchboardTestServers",
            path: "Tests/Support",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardFTPTests",
            dependencies: ["SwitchboardFTP", "SwitchboardDropFolder", "SwitchboardRouting", "SwitchboardTestServers", .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardSFTPTests",
            dependencies: ["SwitchboardSFTP", "SwitchboardDropFolder", "SwitchboardFile", "SwitchboardRouting", "SwitchboardTestServers", .product(name: "Logging", package: "swift-log")],
            exclude: [],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardFileTests",
            dependencies: [
                "SwitchboardFile",
                "SwitchboardDropFolder",
                "SwitchboardRouting",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SwitchboardNodeTests",
            dependencies: [
                "SwitchboardNode",
                "SwitchboardAudit",
                "SwitchboardTestServers",
                .product(name: "Yams", package: "Yams"),
                "SwitchboardTransform",
                "switchboard",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
